/** Client-side routes: `/sensors/:id` patterns matched against a path. */
export type Params = Record<string, string>;

export function match(pattern: string, path: string): Params | null {
  const want = pattern.split('/').filter(Boolean);
  const have = path.split('/').filter(Boolean);
  if (want.length !== have.length) return null;
  const params: Params = {};
  for (let i = 0; i < want.length; i += 1) {
    if (want[i].startsWith(':')) params[want[i].slice(1)] = decodeURIComponent(have[i]);
    else if (want[i] !== have[i]) return null;
  }
  return params;
}

/** The first route whose pattern matches, with its parameters. */
export function resolve<T>(routes: readonly (readonly [string, T])[], path: string): { page: T; params: Params } | null {
  for (const [pattern, page] of routes) {
    const params = match(pattern, path);
    if (params) return { page, params };
  }
  return null;
}

/** A link inside the application that the router can follow without reloading. */
export function isInternalClick(event: MouseEvent, anchor: HTMLAnchorElement, origin: string): boolean {
  if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) {
    return false;
  }
  if (anchor.target && anchor.target !== '_self') return false;
  if (anchor.hasAttribute('download') || anchor.dataset.external !== undefined) return false;
  const url = new URL(anchor.href, origin);
  return url.origin === origin && !/^\/(api|docs|redoc|metrics|health|openapi\.json)(\/|$)/.test(url.pathname);
}
