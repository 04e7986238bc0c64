import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import en from './en.json';
import fr from './fr.json';
import nl from './nl.json';
import { translate } from './translate';

const catalogs = { fr, nl, en } as Record<string, Record<string, string>>;
const SRC = fileURLToPath(new URL('../..', import.meta.url));

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sources(path);
    return /\.(svelte|ts)$/.test(name) && !name.endsWith('.spec.ts') && !name.endsWith('.d.ts') ? [path] : [];
  });
}

/** Every key written literally in a t('...') call, and every prefix of a key built at run time: t(`x.${y}`). */
function usedKeys(): { literal: Set<string>; prefixes: Set<string> } {
  const literal = new Set<string>();
  const prefixes = new Set<string>();
  for (const file of sources(SRC)) {
    const text = readFileSync(file, 'utf8');
    for (const match of text.matchAll(/\bt\(\s*'([^']+)'/g)) literal.add(match[1]);
    for (const match of text.matchAll(/\bt\(\s*`([^`$]+)\$\{/g)) prefixes.add(match[1]);
  }
  return { literal, prefixes };
}

describe('translations', () => {
  it('have the same keys in French, Dutch and English', () => {
    const french = Object.keys(fr).sort();
    for (const [name, catalog] of Object.entries(catalogs)) {
      expect(Object.keys(catalog).sort(), `${name}.json`).toEqual(french);
    }
  });

  it('have no empty text, and the same placeholders in every language', () => {
    for (const key of Object.keys(fr)) {
      const placeholders = (text: string) => [...text.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
      for (const [name, catalog] of Object.entries(catalogs)) {
        expect(catalog[key]?.trim(), `${name}: ${key}`).toBeTruthy();
        expect(placeholders(catalog[key]), `${name}: ${key}`).toEqual(placeholders(fr[key as keyof typeof fr]));
      }
    }
  });

  it('hold every key the application uses', () => {
    const { literal, prefixes } = usedKeys();
    expect(literal.size).toBeGreaterThan(100);
    expect([...literal].filter((key) => !(key in fr))).toEqual([]);
    for (const prefix of prefixes) {
      expect(Object.keys(fr).some((key) => key.startsWith(prefix)), `keys starting with ${prefix}`).toBe(true);
    }
  });

  it('fill placeholders', () => {
    expect(translate({ hello: 'Bonjour {name}, {n} alertes' }, 'hello', { name: 'Sophie', n: 3 })).toBe(
      'Bonjour Sophie, 3 alertes',
    );
    expect(translate({}, 'missing.key')).toBe('missing.key');
    expect(translate({ a: '{x} {y}' }, 'a', { x: 1 })).toBe('1 {y}');
  });
});
