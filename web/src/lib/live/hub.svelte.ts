/**
 * The application's one live connection and what it feeds: a small reactive object per sensor (a card re-renders
 * alone when its sensor speaks), per-sensor listeners for the charts, and toasts for critical alerts.
 */
import type { Sensor } from '../api/client';
import { type LiveAlert, type LiveReading, LiveStream, type StreamState } from './stream';

export class LiveSensor {
  value = $state<number | null>(null);
  at = $state<number | null>(null);
  battery = $state<number | null>(null);
  signal = $state<number | null>(null);
  activeAlerts = $state(0);
  worstSeverity = $state<string | null>(null);

  constructor(sensor: Sensor) {
    this.value = sensor.last_value;
    this.at = sensor.last_reading_at ? Date.parse(sensor.last_reading_at) : null;
    this.battery = sensor.last_battery_level;
  }

  apply(reading: LiveReading): void {
    const at = Date.parse(reading.timestamp);
    if (this.at !== null && at < this.at) return; // a late, older reading does not replace the newest
    this.value = reading.value;
    this.at = at;
    if (reading.battery_level !== undefined && reading.battery_level !== null) this.battery = reading.battery_level;
    if (reading.signal_strength !== undefined) this.signal = reading.signal_strength;
  }
}

export interface Toast {
  id: string;
  alert: LiveAlert;
}

export const live = $state({ state: 'closed' as StreamState });
export const toasts = $state<Toast[]>([]);
export const clock = $state({ now: Date.now() });

const sensors = new Map<string, LiveSensor>();
const listeners = new Map<string, Set<(reading: LiveReading) => void>>();
const alertListeners = new Set<(alert: LiveAlert) => void>();
let stream: LiveStream | null = null;
let ticker: ReturnType<typeof setInterval> | null = null;

/** The live state of a sensor, created from what the API last said about it. */
export function liveSensor(sensor: Sensor): LiveSensor {
  let found = sensors.get(sensor.id);
  if (!found) {
    found = new LiveSensor(sensor);
    sensors.set(sensor.id, found);
  }
  return found;
}

/** Call `listener` with each new reading of the sensor; returns the way to stop. */
export function onReading(sensorId: string, listener: (reading: LiveReading) => void): () => void {
  let set = listeners.get(sensorId);
  if (!set) {
    set = new Set();
    listeners.set(sensorId, set);
  }
  set.add(listener);
  return () => set.delete(listener);
}

export function onAlert(listener: (alert: LiveAlert) => void): () => void {
  alertListeners.add(listener);
  return () => alertListeners.delete(listener);
}

export function dismissToast(id: string): void {
  const index = toasts.findIndex((toast) => toast.id === id);
  if (index >= 0) toasts.splice(index, 1);
}

const MAX_TOASTS = 4;
const TOAST_MS = 20_000;

function receiveAlert(alert: LiveAlert): void {
  const state = sensors.get(alert.sensor_id);
  if (state && alert.purpose === 'opened') {
    state.activeAlerts += 1;
    state.worstSeverity = alert.severity;
  }
  for (const listener of alertListeners) listener(alert);
  if (alert.severity !== 'critical') return;
  const id = `${alert.id}-${alert.purpose}-${alert.occurrences}`;
  if (toasts.some((toast) => toast.id === id)) return;
  toasts.push({ id, alert });
  if (toasts.length > MAX_TOASTS) toasts.splice(0, toasts.length - MAX_TOASTS);
  setTimeout(() => dismissToast(id), TOAST_MS);
}

/** Open the live connection for this token (once), following `buildingIds`. */
export function startLive(token: string, unauthorized: () => void): void {
  if (stream) return;
  const url = () => {
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    return `${scheme}://${location.host}/api/v1/iot/stream?access_token=${encodeURIComponent(token)}`;
  };
  stream = new LiveStream(url, {
    readings(batch) {
      for (const reading of batch) {
        sensors.get(reading.sensor_id)?.apply(reading);
        listeners.get(reading.sensor_id)?.forEach((listener) => listener(reading));
      }
    },
    alert: receiveAlert,
    state(state) {
      live.state = state;
    },
    unauthorized,
  });
  ticker ??= setInterval(() => (clock.now = Date.now()), 1000);
}

export function followBuildings(buildingIds: string[]): void {
  stream?.subscribe(buildingIds);
}

export function stopLive(): void {
  stream?.close();
  stream = null;
  sensors.clear();
  listeners.clear();
  toasts.splice(0, toasts.length);
  live.state = 'closed';
}
