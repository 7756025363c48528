// Public API of @peft-ts/paged-optim. Nothing is exported until the package's capability lands.
export {};
