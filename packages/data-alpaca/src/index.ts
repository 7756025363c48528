// Public API of @peft-ts/data-alpaca. Nothing is exported until the package's capability lands.
export {};
