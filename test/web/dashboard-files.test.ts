import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DashboardFiles, DASHBOARD_DIR } from '../../src/web/dashboard-routes';

function folder(files: Record<string, string>): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'stagebox-dash-'));
  for (const [name, text] of Object.entries(files)) writeFileSync(path.join(dir, name), text);
  return dir;
}

describe('DashboardFiles', () => {
  test('serves the page at / and /index.html and each plain file of a known type; nothing else', () => {
    const dir = folder({ 'index.html': '<script src="app.js"></script>', 'app.js': '1', 'notes.txt': 'x', '.hidden.js': 'x' });
    mkdirSync(path.join(dir, 'sub'));
    writeFileSync(path.join(dir, 'sub', 'inner.js'), 'x');
    symlinkSync('/etc/passwd', path.join(dir, 'passwd.css'));
    assert.deepEqual(new DashboardFiles(dir).paths.sort(), ['/', '/app.js', '/index.html']);
  });

  test('the page refers to each file by its content version', () => {
    const dir = folder({ 'index.html': '<script src="app.js"></script><link href="missing.css">', 'app.js': '1' });
    const files = new DashboardFiles(dir);
    const page = (files as unknown as { files: Map<string, { body: Buffer }> }).files.get('/')!.body.toString();
    assert.match(page, /^<script src="app\.js\?v=[0-9a-f]{16}"><\/script><link href="missing\.css">$/);
  });

  test('a folder without index.html is an error naming the folder', () => {
    const dir = folder({ 'app.js': '1' });
    assert.throws(() => new DashboardFiles(dir), { message: `dashboard folder ${dir} has no index.html` });
  });

  test('the shipped page loads nothing from outside the box', () => {
    const files = new DashboardFiles(DASHBOARD_DIR);
    const all = files as unknown as { files: Map<string, { body: Buffer }> };
    for (const [p, f] of all.files) {
      if (p.endsWith('.svg')) continue; // the SVG's xmlns is a name, not a request
      assert.doesNotMatch(f.body.toString(), /(https?:)?\/\/[a-z0-9.-]+\.[a-z]{2,}/i, `${p} names an external URL`);
    }
  });
});
