import { cpSync, mkdtempSync, readFileSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO_ROOT } from './service-process';

/**
 * What the arm64 tests (test/arm64/, make check-arm64) share: the cross-built
 * production node_modules (make arm64-node-modules), the official Node arm64
 * binary, qemu-aarch64-static to run it, and the app tree they make up.
 */

export const ARM64_MODULES = path.join(REPO_ROOT, 'build', 'arm64', 'node_modules');
export const ARM64_NODE = path.join(REPO_ROOT, 'build', 'arm64-node', 'bin', 'node');
export const QEMU = '/usr/bin/qemu-aarch64-static';
/** Emulation is slow: every wait is bounded, generously, ms. */
export const WAIT_MS = 90_000;

/**
 * An app tree as the arm64 package lays it out: this build's dist/src, dist/web, web
 * and package.json (architecture-independent), next to the arm64 node_modules.
 * A copy, not a symlink: Node resolves modules from a script's real path.
 */
export function stageApp(): string {
  const app = mkdtempSync(path.join(os.tmpdir(), 'stagebox-arm64-app-'));
  cpSync(path.join(REPO_ROOT, 'dist', 'src'), path.join(app, 'dist', 'src'), { recursive: true });
  cpSync(path.join(REPO_ROOT, 'dist', 'web'), path.join(app, 'dist', 'web'), { recursive: true });
  cpSync(path.join(REPO_ROOT, 'web'), path.join(app, 'web'), { recursive: true });
  cpSync(path.join(REPO_ROOT, 'package.json'), path.join(app, 'package.json'));
  symlinkSync(ARM64_MODULES, path.join(app, 'node_modules'));
  return app;
}

/** Files the process has mapped, from the host's /proc (qemu maps the guest's ELF files with their paths). */
export function mappedFiles(pid: number): Set<string> {
  const out = new Set<string>();
  for (const line of readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n')) {
    const i = line.indexOf(' /');
    if (i >= 0) out.add(line.slice(i + 1).replace(/ \(deleted\)$/, ''));
  }
  return out;
}
