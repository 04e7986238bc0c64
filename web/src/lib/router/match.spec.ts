import { describe, expect, it } from 'vitest';
import { match, resolve } from './match';

describe('routes', () => {
  it('match literal segments and capture parameters', () => {
    expect(match('/sensors/:id', '/sensors/abc')).toEqual({ id: 'abc' });
    expect(match('/sensors/:id/edit', '/sensors/a%20b/edit')).toEqual({ id: 'a b' });
    expect(match('/', '/')).toEqual({});
    expect(match('/sensors/:id', '/sensors')).toBeNull();
    expect(match('/alerts', '/sensors')).toBeNull();
  });

  it('resolve to the first matching route', () => {
    const routes = [
      ['/sensors/new', 'form'],
      ['/sensors/:id', 'details'],
    ] as const;
    expect(resolve(routes, '/sensors/new')).toEqual({ page: 'form', params: {} });
    expect(resolve(routes, '/sensors/42')).toEqual({ page: 'details', params: { id: '42' } });
    expect(resolve(routes, '/nowhere')).toBeNull();
  });
});
