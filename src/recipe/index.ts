/** Recipes: load + validate + resolve YAML, resume compatibility, resolved YAML, stage inputs, estimates. */
export { loadRecipe, loadRecipeDetailed, parseRecipe, displayPath, whereIn, type LoadOptions, type LoadedRecipe } from './load.js';
export { resumeKeys, recipeHash, diffResumeKeys, formatChanges, type KeyChange } from './resume.js';
export { toYaml } from './yaml.js';
export { checkInputs, requireInputs, type Input } from './inputs.js';
export type * from './types.js';
