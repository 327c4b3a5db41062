// Types of the generated validator (scripts/manifest-validator.mjs).
export interface ManifestValidator {
  (data: unknown): boolean;
  errors?: { instancePath: string; message?: string }[] | null;
}
declare const validate: ManifestValidator;
export default validate;
