// Public API of @peft-ts/trainer. Nothing is exported until the package's capability lands.
export {};
