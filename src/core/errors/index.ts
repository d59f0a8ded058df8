export { errorCatalogue, behaviourOf, type ErrorCode, type ErrorBehaviour } from './codes.js';
export { TidemarkError, BugIndicatingError, isAbortError, type TidemarkErrorJSON, type TidemarkErrorOptions } from './tidemark-error.js';
