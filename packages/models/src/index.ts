// Public API of @peft-ts/models. Nothing is exported until the package's capability lands.
export {};
