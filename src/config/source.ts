// Maps a path in the parsed config (`['listeners', 0, 'address']`) back to a
// line and column in the YAML/JSON text, so every issue can point at the
// node an operator has to fix.

import { isAlias, isMap, isScalar, isSeq, type Document, type LineCounter, type Node } from 'yaml';

export type Segment = string | number;
export type Path = readonly Segment[];

/**
 * What an issue points at: the node's `value`, its `key` in the enclosing
 * mapping (unknown keys, keys not allowed here), or the mapping at `path`
 * itself (a required key is missing from it).
 */
export type Target = 'value' | 'key' | 'parent';

export interface Position {
  readonly line: number;
  readonly col: number;
}

const START: Position = { line: 1, col: 1 };

/** `['listeners', 0, 'virtual_hosts']` -> `listeners[0].virtual_hosts`. */
export function formatPath(path: Path): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(seg)) out += out === '' ? seg : `.${seg}`;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}

interface Step {
  /** The node at this step (undefined: a pair without a value). */
  readonly node: Node | undefined;
  /** The key node of the pair holding it, when inside a mapping. */
  readonly key: Node | undefined;
}

export class SourceMap {
  readonly #doc: Document;
  readonly #lines: LineCounter;

  constructor(doc: Document, lines: LineCounter) {
    this.#doc = doc;
    this.#lines = lines;
  }

  locate(path: Path, target: Target): Position {
    const { steps, complete } = this.#walk(path);
    const last = steps[steps.length - 1];
    if (last === undefined) return START;
    if (!complete) return this.#start(last.node) ?? this.#start(last.key) ?? START;
    switch (target) {
      case 'key':
        return this.#start(last.key) ?? this.#start(last.node) ?? START;
      case 'parent':
        return this.#start(last.node) ?? this.#start(last.key) ?? START;
      case 'value':
        // `key:` with nothing after it: point at the key, not at the empty spot after it.
        if (last.node === undefined || (isScalar(last.node) && last.node.value === null && last.node.source === '')) {
          return this.#start(last.key) ?? START;
        }
        return this.#start(last.node) ?? START;
    }
  }

  line(path: Path): number {
    return this.locate(path, 'value').line;
  }

  /** Follows `path` as far as the document allows; steps[0] is the root. */
  #walk(path: Path): { steps: Step[]; complete: boolean } {
    const root = this.#doc.contents ?? undefined;
    const steps: Step[] = [{ node: root, key: undefined }];
    let node: Node | undefined = root;
    for (const seg of path) {
      if (isAlias(node)) node = node.resolve(this.#doc);
      let next: Step | undefined;
      if (isMap(node)) {
        const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(seg));
        if (pair !== undefined) next = { node: (pair.value ?? undefined) as Node | undefined, key: pair.key as Node };
      } else if (isSeq(node) && typeof seg === 'number') {
        const item = node.items[seg] as Node | undefined;
        if (item !== undefined) next = { node: item, key: undefined };
      }
      if (next === undefined) return { steps, complete: false };
      steps.push(next);
      node = next.node;
    }
    return { steps, complete: true };
  }

  #start(node: Node | undefined): Position | undefined {
    const offset = node?.range?.[0];
    return offset === undefined ? undefined : this.#lines.linePos(offset);
  }
}
