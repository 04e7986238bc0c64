/** What a sensor card says about a sensor: its health from status and freshness, signal bars, dead letters. */
import type { DeadLetter, SensorStatus } from '../api/client';

export type Health = 'ok' | 'silent' | 'waiting' | 'faulty' | 'maintenance' | 'inactive';

/** Readings count as late after this many sampling intervals (the offline alert rule's default is 3). */
export const LATE_AFTER_INTERVALS = 3;

export function health(status: SensorStatus, lastReadingAt: number | null, samplingInterval: number, now: number): Health {
  if (status !== 'active') return status;
  if (lastReadingAt === null) return 'waiting';
  return now - lastReadingAt > (LATE_AFTER_INTERVALS * samplingInterval + 30) * 1000 ? 'silent' : 'ok';
}

/** 0 to 4 bars from a LoRa/Wi-Fi RSSI in dBm. */
export function signalBars(dbm: number | null | undefined): number {
  if (dbm === null || dbm === undefined) return 0;
  if (dbm >= -60) return 4;
  if (dbm >= -75) return 3;
  if (dbm >= -90) return 2;
  if (dbm >= -105) return 1;
  return 0;
}

/** A dead letter an installer of this sensor should see: sent to its topic, or naming its device id. */
export function concernsSensor(letter: DeadLetter, sensor: { sensor_id: string; mqtt_topic: string }): boolean {
  if (letter.topic === sensor.mqtt_topic) return true;
  const id = sensor.sensor_id.toLowerCase();
  return letter.topic.toLowerCase().split('/').includes(id) || letter.payload_excerpt.toLowerCase().includes(id);
}
