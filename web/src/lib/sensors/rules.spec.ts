import { describe, expect, it } from 'vitest';
import { editText, partialRules, ruleRows } from './rules';

const builtin = { threshold: { enabled: true, maximum: null, duration_s: 0 }, leak: { enabled: true } };
// The effective document is always complete; a layer may hold only some fields.
const effective = { threshold: { enabled: true, maximum: 50, duration_s: 600 }, leak: { enabled: false } };

describe('alert rules', () => {
  it('flatten the layers into one row per field', () => {
    const rows = ruleRows(builtin, { leak: { enabled: false } }, { threshold: { duration_s: 600 } }, effective);
    expect(rows.map((r) => `${r.group}.${r.field}:${r.kind}`)).toEqual([
      'threshold.enabled:boolean', 'threshold.maximum:number', 'threshold.duration_s:number', 'leak.enabled:boolean',
    ]);
    const duration = rows[2];
    expect([duration.builtin, duration.defaults, duration.override, duration.effective]).toEqual([0, undefined, 600, 600]);
    expect(rows[3].defaults).toBe(false);
    expect(ruleRows({}, null, null, effective).map((r) => [r.builtin, r.kind])).toEqual([
      [undefined, 'boolean'], [undefined, 'number'], [undefined, 'number'], [undefined, 'boolean'],
    ]);
  });

  it('send only the fields given a value', () => {
    const rows = ruleRows(builtin, null, null, effective);
    const doc = partialRules({ 'threshold.maximum': '45.5', 'threshold.duration_s': ' ', 'leak.enabled': 'false', 'threshold.enabled': 'x1' }, rows);
    expect(doc).toEqual({ threshold: { maximum: 45.5, enabled: false }, leak: { enabled: false } });
    expect(partialRules({ 'threshold.maximum': 'abc' }, rows)).toEqual({});
    expect(partialRules({ 'threshold.maximum': 45, 'threshold.duration_s': null }, rows)).toEqual({ threshold: { maximum: 45 } });
  });

  it('show unset layers as empty fields', () => {
    expect([editText(undefined), editText(null), editText(0), editText(false)]).toEqual(['', '', '0', 'false']);
  });
});
