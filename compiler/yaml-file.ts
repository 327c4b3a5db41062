/** Whether a config file is in the YAML form (by its name), without loading the YAML reader. */
export function isYamlFile(file: string): boolean {
  return /\.ya?ml$/i.test(file);
}
