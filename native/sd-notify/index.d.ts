/**
 * Sends `message` as one datagram to the AF_UNIX socket `socketPath`
 * ("/run/systemd/notify", or "@name" for the abstract namespace), without
 * blocking. Returns 0, or a negative errno (-ENOENT, -ECONNREFUSED, -EAGAIN …).
 * Throws TypeError for a non-string argument and RangeError for a path longer
 * than sun_path (107 bytes).
 */
export function send(socketPath: string, message: string): number;
