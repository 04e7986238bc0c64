/** A small history router: the URL is the state, `navigate` changes it, links are followed without reloading. */
import { isInternalClick } from './match';

function current() {
  return { path: location.pathname, query: new URLSearchParams(location.search) };
}

export const route = $state(current());

export function navigate(to: string, options: { replace?: boolean } = {}): void {
  if (to === location.pathname + location.search) return;
  if (options.replace) history.replaceState(null, '', to);
  else history.pushState(null, '', to);
  Object.assign(route, current());
  window.scrollTo(0, 0);
}

/** Change query parameters of the current page (filters), replacing the history entry. */
export function setQuery(values: Record<string, string | null | undefined>): void {
  const query = new URLSearchParams(location.search);
  for (const [key, value] of Object.entries(values)) {
    if (value) query.set(key, value);
    else query.delete(key);
  }
  const search = query.toString();
  navigate(location.pathname + (search ? `?${search}` : ''), { replace: true });
}

export function startRouter(): () => void {
  const onPop = () => Object.assign(route, current());
  const onClick = (event: MouseEvent) => {
    const anchor = (event.target as Element | null)?.closest?.('a');
    if (anchor instanceof HTMLAnchorElement && isInternalClick(event, anchor, location.origin)) {
      event.preventDefault();
      const url = new URL(anchor.href);
      navigate(url.pathname + url.search);
    }
  };
  window.addEventListener('popstate', onPop);
  document.addEventListener('click', onClick);
  return () => {
    window.removeEventListener('popstate', onPop);
    document.removeEventListener('click', onClick);
  };
}
