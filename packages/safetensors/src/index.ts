// Public API of @peft-ts/safetensors. Nothing is exported until the package's capability lands.
export {};
