import { main } from './appliance/cli';

// alsa-capture's reader holds a libuv threadpool thread for its whole life;
// make room before anything touches the pool (fs, zlib, dns).
process.env.UV_THREADPOOL_SIZE ??= '16';

main(process.argv.slice(2)).then(
  ({ code, stuckThreads }) => {
    if (stuckThreads === 0) process.exit(code);
    // Give the async log destination a moment, then die by the default SIGTERM action.
    setTimeout(() => {
      process.removeAllListeners('SIGTERM');
      process.kill(process.pid, 'SIGTERM');
    }, 50);
  },
  (err: Error) => {
    process.stderr.write(`stagebox: fatal: ${err.stack ?? err.message}\n`);
    process.exit(1);
  },
);
