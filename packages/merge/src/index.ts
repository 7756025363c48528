// Public API of @peft-ts/merge. Nothing is exported until the package's capability lands.
export {};
