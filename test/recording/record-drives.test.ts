import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DriveError, FAT_MAX_FILE_BYTES, parseMountinfo, RecordDrives } from '../../src/recording/record-drives';

/**
 * Drive choice against a mount table and a sysfs tree laid out like a
 * Raspberry Pi's (a USB stick, an SD card reader, a read-only mount, a mount
 * elsewhere). The mount points are real folders, so writability and free
 * space are the kernel's answers.
 */

const root = mkdtempSync(path.join(os.tmpdir(), 'rec-drives-'));
after(() => rmSync(root, { recursive: true, force: true }));

const media = path.join(root, 'media');
const stateDir = path.join(root, 'state');
const sys = path.join(root, 'sys');
for (const d of ['usb0', 'usb1', 'sd', 'ro', 'my stick']) mkdirSync(path.join(media, d), { recursive: true });
mkdirSync(path.join(root, 'elsewhere'), { recursive: true });
mkdirSync(stateDir, { recursive: true });

/** /sys/dev/block/<maj:min> → the device's sysfs path, as the kernel links it. */
function blockDevice(majorMinor: string, devicePath: string): void {
  const target = path.join(sys, 'devices', devicePath);
  mkdirSync(target, { recursive: true });
  mkdirSync(path.join(sys, 'dev', 'block'), { recursive: true });
  symlinkSync(path.relative(path.join(sys, 'dev', 'block'), target), path.join(sys, 'dev', 'block', majorMinor));
}
blockDevice('8:1', 'pci0000:00/0000:00:14.0/usb2/2-1/2-1:1.0/host0/target0:0:0/0:0:0:0/block/sda/sda1');
blockDevice('8:17', 'platform/scb/fd500000.pcie/pci0000:00/0000:01:00.0/usb1/1-1/1-1.3/1-1.3:1.0/host1/target1:0:0/1:0:0:0/block/sdb/sdb1');
blockDevice('179:1', 'platform/emmc2bus/fe340000.mmc/mmc_host/mmc0/mmc0:aaaa/block/mmcblk0/mmcblk0p1');
blockDevice('8:33', 'pci0000:00/0000:00:14.0/usb2/2-2/2-2:1.0/host2/target2:0:0/2:0:0:0/block/sdc/sdc1');

const esc = (p: string): string => p.replace(/ /g, '\\040');
const mountinfo = path.join(root, 'mountinfo');
writeFileSync(
  mountinfo,
  [
    `22 1 179:2 / / rw,relatime shared:1 - ext4 /dev/mmcblk0p2 rw`,
    `40 22 8:17 / ${esc(path.join(media, 'usb1'))} rw,nosuid,nodev,relatime shared:20 - exfat /dev/sdb1 rw,uid=1000`,
    `41 22 8:1 / ${esc(path.join(media, 'usb0'))} rw,nosuid,nodev,relatime shared:21 - vfat /dev/sda1 rw,fmask=0022`,
    `42 22 179:1 / ${esc(path.join(media, 'sd'))} rw,relatime shared:22 - ext4 /dev/mmcblk0p1 rw`,
    `43 22 8:33 / ${esc(path.join(media, 'ro'))} ro,relatime shared:23 - vfat /dev/sdc1 ro`,
    `44 22 8:1 / ${esc(path.join(root, 'elsewhere'))} rw,relatime shared:24 - vfat /dev/sda1 rw`,
    `45 22 8:1 / ${esc(path.join(media, 'my stick'))} rw,relatime shared:25 - vfat /dev/sda1 rw`,
    'a line the kernel never writes',
    '',
  ].join('\n'),
);

function drives(dir = 'auto', table = mountinfo): RecordDrives {
  return new RecordDrives({ dir, drives: [media], stateDir, mountinfo: table, sysRoot: sys });
}

describe('recording drives', () => {
  test('mountinfo: mount points with their escapes, options, type and source', () => {
    const m = parseMountinfo(`45 22 8:1 / /media/my\\040stick rw,relatime shared:25 - vfat /dev/sda1 rw\n`);
    assert.deepEqual(m, [{ majorMinor: '8:1', mountPoint: '/media/my stick', options: ['rw', 'relatime'], fsType: 'vfat', source: '/dev/sda1' }]);
  });

  test('list: drives below recording.drives only, USB first, read-only ones not writable, state.dir/recordings last', async () => {
    const list = await drives().list();
    assert.deepEqual(
      list.map((d) => [d.mount, d.kind, d.fsType, d.writable, d.maxFileBytes]),
      [
        [path.join(media, 'my stick'), 'usb', 'vfat', true, FAT_MAX_FILE_BYTES],
        [path.join(media, 'ro'), 'usb', 'vfat', false, FAT_MAX_FILE_BYTES],
        [path.join(media, 'usb0'), 'usb', 'vfat', true, FAT_MAX_FILE_BYTES],
        [path.join(media, 'usb1'), 'usb', 'exfat', true, null],
        [path.join(media, 'sd'), 'drive', 'ext4', true, null],
        [path.join(stateDir, 'recordings'), 'state-dir', 'ext4', true, null],
      ],
    );
    assert.equal(list[0]!.dir, path.join(media, 'my stick', 'stagebox'));
    assert.ok(list.every((d) => d.freeBytes !== null && d.freeBytes > 0));
  });

  test('pick: the first writable USB drive; a requested drive; recording.dir when set', async () => {
    assert.equal((await drives().pick()).mount, path.join(media, 'my stick'));
    assert.equal((await drives().pick(path.join(media, 'sd'))).dir, path.join(media, 'sd', 'stagebox'));
    const configured = path.join(media, 'usb1', 'shows');
    const d = await drives(configured).pick();
    assert.deepEqual([d.kind, d.dir, d.fsType], ['configured', configured, 'exfat']);
  });

  test('pick: no USB drive mounted: state.dir/recordings', async () => {
    const table = path.join(root, 'mountinfo-none');
    writeFileSync(table, `22 1 179:2 / / rw,relatime shared:1 - ext4 /dev/mmcblk0p2 rw\n`);
    const d = await drives('auto', table).pick();
    assert.deepEqual([d.kind, d.dir], ['state-dir', path.join(stateDir, 'recordings')]);
  });

  test('pick: a drive path outside the allowed mounts, or a read-only one, is refused with what is allowed', async () => {
    for (const bad of [path.join(root, 'elsewhere'), '/etc', `${media}/usb0/../../elsewhere`]) {
      await assert.rejects(drives().pick(bad), (err: Error) => {
        assert.ok(err instanceof DriveError);
        assert.equal(err.code, 'bad-drive');
        assert.ok(err.message.startsWith(`drive ${JSON.stringify(bad)} is not a recording drive; allowed: ${path.join(media, 'my stick')}, `), err.message);
        return true;
      });
    }
    await assert.rejects(drives().pick(path.join(media, 'ro')), { name: 'Error', message: `drive ${path.join(media, 'ro')} is not writable (vfat on /dev/sdc1)` });
  });
});
