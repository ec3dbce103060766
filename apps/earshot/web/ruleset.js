// The required items (the checklist) of a ruleset version, read from its YAML as
// GET /api/v1/rulesets/{id}/versions/{v} returns it (`source`).
//
// This is not a YAML parser. It reads the layout of rulesets/schema/ruleset.schema.json as
// the built-in rulesets write it: a top-level `rules:` block list whose items are maps of
// `key: value` lines (plain, quoted, `[a, b]` flow lists, or `>`/`|` blocks). For the checklist
// it needs only each rule's `id`, `kind`, `title` and `languages`. A document it cannot read
// gives an empty list, and the panel then shows the items as they complete or are missed.

/** Rules of `kind: required` that apply to a call in `language`: [{ id, title }]. */
export function requiredItems(yaml, language) {
  return readRules(yaml)
    .filter((r) => r.kind === 'required' && typeof r.id === 'string')
    .filter((r) => !Array.isArray(r.languages) || r.languages.length === 0
      || r.languages.some((tag) => covers(String(tag), language ?? '')))
    .map((r) => ({ id: r.id, title: typeof r.title === 'string' && r.title ? r.title : r.id }));
}

/** As the rules engine decides it: `en` covers `en-US`; `en-US` does not cover `en`. */
export function covers(tag, language) {
  const t = tag.toLowerCase();
  const l = language.toLowerCase();
  return l === t || l.startsWith(`${t}-`);
}

/** The top-level keys of each item of `rules:`. */
export function readRules(yaml) {
  const rules = [];
  let inRules = false;
  let itemIndent = -1;
  let current = null;
  /** A `>` or `|` block being collected: { key, style, indent, lines }. */
  let block = null;
  const endBlock = () => {
    if (!block) return;
    // A title is one line on screen, whichever block style wrote it.
    current[block.key] = block.lines.join(' ').trim();
    block = null;
  };
  for (const raw of String(yaml).split(/\r?\n/)) {
    const indent = raw.length - raw.trimStart().length;
    const trimmed = raw.trim();
    if (block) {
      if (!trimmed || indent > block.indent) {
        if (trimmed) block.lines.push(trimmed);
        continue;
      }
      endBlock();
    }
    if (!trimmed || trimmed.startsWith('#')) continue;
    if (indent === 0) {
      inRules = /^rules:\s*(#.*)?$/.test(trimmed);
      current = null;
      continue;
    }
    if (!inRules) continue;
    const item = /^-\s+(.*)$/.exec(trimmed);
    if (item && (itemIndent < 0 || indent === itemIndent)) {
      itemIndent = indent;
      current = {};
      rules.push(current);
      block = keyValue(item[1], current, indent + 2);
      continue;
    }
    if (current && indent === itemIndent + 2) block = keyValue(trimmed, current, indent);
  }
  if (block) endBlock();
  return rules;
}

/** Reads `key: value` into `into`; answers a block to collect when the value is `>` or `|`. */
function keyValue(text, into, indent) {
  const m = /^([A-Za-z_][\w-]*):(?:\s+(.*))?$/.exec(text);
  if (!m) return null;
  const [, key, rawValue = ''] = m;
  const value = stripComment(rawValue).trim();
  if (/^[>|][-+]?$/.test(value)) return { key, style: value[0], indent, lines: [] };
  into[key] = scalar(value);
  return null;
}

function stripComment(value) {
  if (/^["']/.test(value.trim())) return value;
  const i = value.search(/\s#/);
  return i >= 0 ? value.slice(0, i) : value;
}

function scalar(value) {
  if (value === '') return null;
  if (value.startsWith('[') && value.endsWith(']')) {
    return value.slice(1, -1).split(',').map((s) => scalar(s.trim())).filter((s) => s !== null);
  }
  if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) {
    try {
      return JSON.parse(value);
    } catch {
      return value.slice(1, -1);
    }
  }
  if (value.length >= 2 && value.startsWith("'") && value.endsWith("'")) {
    return value.slice(1, -1).replaceAll("''", "'");
  }
  return value;
}
