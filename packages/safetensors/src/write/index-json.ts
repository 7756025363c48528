// The shard index JSON as transformers writes it: Python's json.dumps(indent=2, sort_keys=True,
// ensure_ascii=True) plus a trailing newline, so indexes we write diff cleanly against theirs.
import { compareCodePoints } from '../format/header.js';

const SHORT_ESCAPES: Record<number, string> = {
  0x22: '\\"',
  0x5c: '\\\\',
  0x08: '\\b',
  0x0c: '\\f',
  0x0a: '\\n',
  0x0d: '\\r',
  0x09: '\\t',
};

/** A JSON string literal with everything outside printable ASCII escaped, per UTF-16 unit. */
export function asciiJsonString(s: string): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const short = SHORT_ESCAPES[c];
    if (short !== undefined) out += short;
    else if (c < 0x20 || c > 0x7e) out += `\\u${c.toString(16).padStart(4, '0')}`;
    else out += s[i];
  }
  return `${out}"`;
}

export function shardIndexJson(totalSize: number, weightMap: ReadonlyMap<string, string>): string {
  const names = [...weightMap.keys()].sort(compareCodePoints);
  const entries = names.map((name) => `    ${asciiJsonString(name)}: ${asciiJsonString(weightMap.get(name) ?? '')}`);
  const map = entries.length ? `{\n${entries.join(',\n')}\n  }` : '{}';
  return `{\n  "metadata": {\n    "total_size": ${totalSize}\n  },\n  "weight_map": ${map}\n}\n`;
}
