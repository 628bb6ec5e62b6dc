import { readFileSync } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from '../helpers/service-process';

/** packaging/install-files.txt, the one list behind make install, make deb and the Yocto recipe. */
export const INSTALL_LIST = path.join(REPO_ROOT, 'packaging', 'install-files.txt');

export interface InstallEntry {
  kind: 'file' | 'tree';
  mode: string;
  source: string;
  /** With @PREFIX@ = /usr and @UNITDIR@ = /lib/systemd/system, the defaults. */
  target: string;
}

/** The list's entries, parsed as packaging/install-tree.sh reads them. */
export function readInstallList(): InstallEntry[] {
  const out: InstallEntry[] = [];
  for (const [i, raw] of readFileSync(INSTALL_LIST, 'utf8').split('\n').entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const f = line.split(/\s+/);
    if (f.length !== 4 || (f[0] !== 'file' && f[0] !== 'tree')) {
      throw new Error(`install-files.txt:${i + 1}: want "file|tree mode source target": ${JSON.stringify(raw)}`);
    }
    out.push({
      kind: f[0],
      mode: f[1]!,
      source: f[2]!,
      target: f[3]!.replace('@PREFIX@', '/usr').replace('@UNITDIR@', '/lib/systemd/system'),
    });
  }
  return out;
}
