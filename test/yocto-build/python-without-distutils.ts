import { copyFileSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/**
 * What Python 3.12 removed (PEP 632 distutils, PEP 594's asynchat, asyncore,
 * smtpd, and imp), plus what puts a distutils back on a 3.11: setuptools and
 * its `_distutils_hack` shim live in dist-packages, which this Python never
 * sees.
 */
export const REMOVED_IN_312 = ['distutils', 'imp', 'asynchat', 'asyncore', 'smtpd'] as const;

/**
 * A Debian 12 Python 3.11 standing in for scarthgap's python3-native (3.12):
 * its own prefix, whose lib/python3.11 links every module of the system's
 * standard library but those 3.12 removed, and no site- or dist-packages.
 * Python finds its prefix from the executable's location, so `import distutils`
 * fails exactly as on 3.12 (ModuleNotFoundError), with nothing to stub.
 *
 * Every start appends its working directory and argv (JSON, one line) to
 * `<prefix>/invocations.jsonl` (from a sitecustomize of its own), so a test
 * can tell which scripts ran under it.
 *
 * @param prefix an empty or missing directory to build it in
 * @param stdlib the system's standard library (default Debian's /usr/lib/python3.11)
 * @param binary the interpreter to copy (default /usr/bin/python3.11; a copy, not a link,
 *   so the prefix search starts here)
 * @returns the path of `<prefix>/bin/python3`
 */
export function makePythonWithoutDistutils(prefix: string, stdlib = '/usr/lib/python3.11', binary = '/usr/bin/python3.11'): string {
  const lib = path.join(prefix, 'lib', 'python3.11');
  mkdirSync(lib, { recursive: true });
  mkdirSync(path.join(prefix, 'bin'), { recursive: true });
  const hidden = new Set<string>([...REMOVED_IN_312.flatMap((m) => [m, `${m}.py`]), 'site-packages', 'dist-packages', 'sitecustomize.py']);
  for (const name of readdirSync(stdlib)) {
    if (!hidden.has(name)) symlinkSync(path.join(stdlib, name), path.join(lib, name));
  }
  writeFileSync(
    path.join(lib, 'sitecustomize.py'),
    [
      'import json, os, sys',
      `with open(${JSON.stringify(path.join(prefix, 'invocations.jsonl'))}, 'a') as f:`,
      '    f.write(json.dumps({"cwd": os.getcwd(), "argv": sys.argv}) + "\\n")',
      '',
    ].join('\n'),
  );
  copyFileSync(binary, path.join(prefix, 'bin', 'python3.11'));
  symlinkSync('python3.11', path.join(prefix, 'bin', 'python3'));
  return path.join(prefix, 'bin', 'python3');
}
