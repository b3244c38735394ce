export * from './config.js';
export * from './presets.js';
export { readHFConfig, writeHFConfig, parseHFConfig, hfConfigObject } from './hf-config.js';
export { openSafetensors, writeSafetensors, type SafetensorsReader, type TensorInfo, type TensorToWrite, type Dtype } from './safetensors.js';
export { loadModel, saveModel, readWeights, type LoadedModel, type SaveOptions } from './load.js';
export { initWeights, initStd } from './init.js';
