import { homedir } from 'node:os';
import { join } from 'node:path';

/** pagoda's home folder (models, caches): `PAGODA_HOME`, else `~/.pagoda`. */
export function pagodaHome(): string {
  return process.env.PAGODA_HOME || join(homedir(), '.pagoda');
}
