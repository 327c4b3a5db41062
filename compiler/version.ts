/** Kept equal to package.json's version (a test checks); recorded in every image manifest. */
export const COMPILER_VERSION = '0.1.0';
