/**
 * The typed API client. `schema.d.ts` is generated at every build from the server's OpenAPI document
 * (`make web` writes web/openapi.json, then `openapi-typescript`), so a changed API breaks the type check here
 * instead of the page in someone's browser.
 */
import createClient, { type Middleware } from 'openapi-fetch';
import type { components, paths } from './schema';

type Schemas = components['schemas'];
export type User = Schemas['UserOut'];
export type Building = Schemas['BuildingOut'];
export type Unit = Schemas['UnitOut'];
export type Sensor = Schemas['SensorOut'];
export type SensorIn = Schemas['SensorIn'];
export type SensorType = Schemas['SensorType'];
export type SensorStatus = Schemas['SensorStatus'];
export type Alert = Schemas['AlertOut'];
export type AlertStatistics = Schemas['AlertStatisticsOut'];
export type DeadLetter = Schemas['DeadLetterOut'];
export type TimeSeries = Schemas['TimeSeriesOut'];
export type GaugePoint = Schemas['GaugePointOut'];
export type CounterPoint = Schemas['CounterPointOut'];
export type Consumption = Schemas['ConsumptionOut'];
export type Median = Schemas['MedianOut'];
export type Comparison = Schemas['ComparisonOut'];
export type Balance = Schemas['BalanceOut'];
export type Insights = Schemas['InsightsOut'];
export type IstaImport = Schemas['ImportOut'];
export type IstaReport = Schemas['ReportOut'];
export type NotificationSettings = Schemas['SettingsOut'];
export type NotificationRoute = Schemas['RouteOut'];
export type DeviceFormatInfo = Schemas['FormatOut'];
export type HeardDevice = Schemas['DeviceOut'];
export type Forecast = Schemas['ForecastOut'];
export type DeviceCredential = Schemas['CredentialOut'];
export type IssuedCredential = Schemas['IssuedCredential'];
export type Horizon = Schemas['Horizon'];
export type GroupBy = Schemas['GroupBy'];
export type Period = Schemas['Period'];

/** An API answer other than 2xx: its status, and the `{"error", "message"}` body of api/errors.py. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly code?: string,
  ) {
    super(message);
  }
}

const hooks = { token: (): string | null => null, unauthorized: (): void => {} };

/** Where the client finds the session's token, and what it does when the server says the token is no good. */
export function connectSession(token: () => string | null, unauthorized: () => void): void {
  hooks.token = token;
  hooks.unauthorized = unauthorized;
}

export function authorization(): Record<string, string> {
  const token = hooks.token();
  return token ? { Authorization: `Bearer ${token}` } : {};
}

const auth: Middleware = {
  onRequest({ request }) {
    const token = hooks.token();
    if (token) request.headers.set('Authorization', `Bearer ${token}`);
    return request;
  },
  onResponse({ request, response }) {
    if (response.status === 401 && !new URL(request.url).pathname.endsWith('/auth/login')) hooks.unauthorized();
    return response;
  },
};

export const api = createClient<paths>({ baseUrl: location.origin });
api.use(auth);

function describe(error: unknown, response: Response): { message: string; code?: string } {
  if (error && typeof error === 'object' && 'message' in error) {
    const body = error as { message: unknown; error?: unknown };
    return { message: String(body.message), code: typeof body.error === 'string' ? body.error : undefined };
  }
  return { message: `${response.status} ${response.statusText}` };
}

/** The body of a successful answer, or an ApiError. */
export async function data<T>(call: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  const { data: body, error, response } = await call;
  if (!response.ok) {
    const { message, code } = describe(error, response);
    throw new ApiError(response.status, message, code);
  }
  return body as T;
}

/** Fetch a CSV export with the session's token and hand it to the browser as a download. */
export async function download(path: string, query: Record<string, string>, fallbackName: string): Promise<void> {
  const url = `${path}?${new URLSearchParams({ ...query, format: 'csv' })}`;
  const response = await fetch(url, { headers: authorization() });
  if (response.status === 401) hooks.unauthorized();
  if (!response.ok) throw new ApiError(response.status, `${response.status} ${response.statusText}`);
  const name = /filename="([^"]+)"/.exec(response.headers.get('Content-Disposition') ?? '')?.[1] ?? fallbackName;
  const link = document.createElement('a');
  link.href = URL.createObjectURL(await response.blob());
  link.download = name;
  link.dataset.external = '';
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
}
