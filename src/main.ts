// alsa-capture's reader holds a libuv threadpool thread for its whole life;
// make room before anything touches the pool (fs, zlib, dns).
process.env.UV_THREADPOOL_SIZE ??= '16';

const argv = process.argv.slice(2);
if (argv[0] === 'listen') {
  // The command-line listener needs nothing of the service: load only its own modules.
  const { listenMain } = require('./listen/listen-command') as typeof import('./listen/listen-command');
  listenMain(argv.slice(1)).then(
    (code) => process.exit(code),
    (err: Error) => {
      process.stderr.write(`stagebox listen: fatal: ${err.stack ?? err.message}\n`);
      process.exit(1);
    },
  );
} else {
  const { main } = require('./appliance/cli') as typeof import('./appliance/cli');
  main(argv).then(
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
}
