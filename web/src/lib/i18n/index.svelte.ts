/** The reader's language: French by default, Dutch and English; remembered in this browser. */
import en from './en.json';
import fr from './fr.json';
import nl from './nl.json';
import { type Catalog, type Params, translate } from './translate';

export const LOCALES = ['fr', 'nl', 'en'] as const;
export type Locale = (typeof LOCALES)[number];

const CATALOGS: Record<Locale, Catalog> = { fr, nl, en };
// Belgian French and Dutch: the buildings are in Belgium (1 234,5; dates day first).
const INTL_TAGS: Record<Locale, string> = { fr: 'fr-BE', nl: 'nl-BE', en: 'en-GB' };
const STORAGE_KEY = 'koprogo.locale';

function stored(): Locale {
  const saved = typeof localStorage === 'undefined' ? null : localStorage.getItem(STORAGE_KEY);
  return (LOCALES as readonly string[]).includes(saved ?? '') ? (saved as Locale) : 'fr';
}

export const i18n = $state({ locale: stored() });

/** The text of `key` in the current language; reading it in a template re-renders on a language change. */
export function t(key: string, params?: Params): string {
  return translate(CATALOGS[i18n.locale], key, params);
}

/** The BCP 47 tag Intl formats with. */
export function intlLocale(): string {
  return INTL_TAGS[i18n.locale];
}

export function setLocale(locale: Locale): void {
  i18n.locale = locale;
  localStorage.setItem(STORAGE_KEY, locale);
  document.documentElement.lang = locale;
}
