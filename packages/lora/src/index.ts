// Public API of @peft-ts/lora. Nothing is exported until the package's capability lands.
export {};
