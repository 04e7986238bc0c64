/** Alert rules documents: flattening the layers into rows, and building a partial document from the edits. */
export type RulesDoc = Record<string, Record<string, unknown>>;

export interface RuleRow {
  group: string;
  field: string;
  kind: 'boolean' | 'number';
  builtin: unknown;
  defaults: unknown;
  override: unknown;
  effective: unknown;
}

function at(doc: RulesDoc | null | undefined, group: string, field: string): unknown {
  return doc?.[group]?.[field];
}

/** One row per rule field, in the effective (complete) document's order, with each layer's value (undefined: not
 * set in that layer). */
export function ruleRows(builtin: RulesDoc, defaults: RulesDoc | null, override: RulesDoc | null, effective: RulesDoc): RuleRow[] {
  return Object.entries(effective).flatMap(([group, fields]) =>
    Object.keys(fields).map((field) => ({
      group,
      field,
      kind: typeof fields[field] === 'boolean' || typeof at(builtin, group, field) === 'boolean' ? 'boolean' : 'number',
      builtin: at(builtin, group, field),
      defaults: at(defaults, group, field),
      override: at(override, group, field),
      effective: fields[field],
    })),
  );
}

/** The partial document for PUT: only the fields given a value ('' leaves a field to the layer below). */
export function partialRules(edits: Record<string, string | number | null>, rows: RuleRow[]): RulesDoc {
  const doc: RulesDoc = {};
  for (const row of rows) {
    const text = String(edits[`${row.group}.${row.field}`] ?? '').trim(); // a number input binds a number
    if (text === '') continue;
    const value = row.kind === 'boolean' ? text === 'true' : Number(text);
    if (row.kind === 'number' && !Number.isFinite(value)) continue;
    (doc[row.group] ??= {})[row.field] = value;
  }
  return doc;
}

/** The edit field's text for a layer value. */
export function editText(value: unknown): string {
  return value === undefined || value === null ? '' : String(value);
}
