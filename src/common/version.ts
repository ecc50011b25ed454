import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** The version of this release (package.json next to dist/). */
export const VERSION: string = (require('../../package.json') as { version: string }).version;
