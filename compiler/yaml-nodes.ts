import { isMap, isScalar, type Document, type Node as YamlNode } from 'yaml';

/**
 * The node a schema problem points at: the key itself when the problem is
 * a key (unknown, or badly named) of the map at `path`, else the value at
 * `path`; the document when neither is there.
 */
export function problemNode(doc: Document, path: readonly string[], key?: string): YamlNode | undefined {
  const at = (path.length ? doc.getIn(path, true) : doc.contents) as YamlNode | undefined;
  if (key === undefined) return at ?? (doc.contents as YamlNode | undefined);
  if (isMap(at)) {
    const pair = at.items.find((p) => isScalar(p.key) && String(p.key.value) === key);
    if (pair && isScalar(pair.key)) return pair.key;
  }
  return at;
}
