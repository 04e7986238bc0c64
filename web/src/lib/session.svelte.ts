/** Who is signed in: the token and user, kept in this browser until they expire or the person signs out. */
import { connectSession, type User } from './api/client';

const KEY = 'koprogo.session';

interface Stored {
  token: string;
  user: User;
  expiresAt: number;
}

function load(): Stored | null {
  try {
    const stored = JSON.parse(localStorage.getItem(KEY) ?? 'null') as Stored | null;
    return stored && stored.expiresAt > Date.now() ? stored : null;
  } catch {
    return null;
  }
}

const initial = load();

export const session = $state<{ token: string | null; user: User | null; notice: string | null }>({
  token: initial?.token ?? null,
  user: initial?.user ?? null,
  notice: null,
});

let expiry: ReturnType<typeof setTimeout> | null = null;

function scheduleExpiry(expiresAt: number): void {
  if (expiry) clearTimeout(expiry);
  // Past the token's life every call would answer 401: go back to the login page at that moment instead.
  expiry = setTimeout(() => signOut('login.expired'), Math.min(expiresAt - Date.now(), 2 ** 31 - 1));
}

export function signIn(token: string, user: User, expiresInSeconds: number): void {
  const expiresAt = Date.now() + expiresInSeconds * 1000;
  localStorage.setItem(KEY, JSON.stringify({ token, user, expiresAt } satisfies Stored));
  Object.assign(session, { token, user, notice: null });
  scheduleExpiry(expiresAt);
}

/** Forget the session; `notice` (an i18n key) is shown on the login page. */
export function signOut(notice: string | null = null): void {
  if (expiry) clearTimeout(expiry);
  localStorage.removeItem(KEY);
  Object.assign(session, { token: null, user: null, notice });
}

export function isManager(): boolean {
  return session.user?.role === 'syndic' || session.user?.role === 'superadmin';
}

if (initial) scheduleExpiry(initial.expiresAt);
connectSession(
  () => session.token,
  () => {
    if (session.token) signOut('login.expired');
  },
);
