/** The building on screen: chosen in the picker, remembered in this browser, shared by the pages. */
import { api, type Building, data } from './api/client';

const KEY = 'koprogo.building';

export const place = $state<{ buildings: Building[]; buildingId: string | null; loaded: boolean }>({
  buildings: [],
  buildingId: null,
  loaded: false,
});

export async function loadBuildings(): Promise<void> {
  if (place.loaded) return;
  const buildings = await data(api.GET('/api/v1/buildings'));
  const remembered = localStorage.getItem(KEY);
  place.buildings = buildings;
  place.buildingId = buildings.find((b) => b.id === remembered)?.id ?? buildings[0]?.id ?? null;
  place.loaded = true;
}

export function chooseBuilding(id: string): void {
  place.buildingId = id;
  localStorage.setItem(KEY, id);
}

export function buildingName(id: string | null | undefined): string {
  return place.buildings.find((b) => b.id === id)?.name ?? '–';
}
