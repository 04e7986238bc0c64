/** Catalog look-up with `{name}` placeholders; a missing key shows itself (and the i18n spec fails). */
export type Catalog = Record<string, string>;
export type Params = Record<string, string | number>;

export function translate(catalog: Catalog, key: string, params?: Params): string {
  const text = catalog[key] ?? key;
  if (!params) return text;
  return text.replace(/\{(\w+)\}/g, (whole, name: string) => (name in params ? String(params[name]) : whole));
}
