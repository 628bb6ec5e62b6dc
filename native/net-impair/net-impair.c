/*
 * nh-impair: the impairment stage of the bench's impaired-network harness
 * (bench/net/net-harness.ts starts it; docs/architecture.md, "Impaired-network
 * harness", says why it is built this way).
 *
 * It runs in the harness's router namespace, where iptables sends every
 * forwarded IPv4 packet of listener link i to NFQUEUE 2i (towards the
 * listener, "down") or 2i+1 (towards the box, "up"). The kernel holds each
 * packet until we give its verdict, so a delay is a late NF_ACCEPT and a loss
 * is an NF_DROP: no copy of the packet ever passes through here (we ask for
 * metadata only), GSO segmentation and checksums stay the kernel's business.
 *
 * The model, per link and direction, is deterministic from --seed:
 *   - loss: Gilbert-Elliott (good/bad states; every packet in "bad" is lost),
 *     decided per packet in arrival order, so the same traffic gives the same
 *     drop pattern whatever the timing;
 *   - delay: a fixed base plus a jitter drawn from a distribution given as
 *     quantile knots (inverse CDF, piecewise linear), so a profile states the
 *     p50/p95/p99 it wants instead of a distribution family's parameters;
 *   - FIFO release: a packet never leaves before the one ahead of it, as on
 *     Wi-Fi, where frames wait behind retransmissions instead of overtaking;
 *   - stalls: windows in time in which the whole link (both directions) sends
 *     nothing; what is due inside one leaves together when it ends;
 *   - power-save holds: the same, towards the listener only (an access point
 *     buffers frames for a sleeping phone; the phone's own frames wake it).
 * Stall and hold windows are drawn from their own generators on a schedule in
 * time, independent of the traffic, and reported with their times so the bench
 * can line them up with what the listeners heard.
 *
 * Reports are JSON lines on stdout: SIGUSR1 prints one and starts a new
 * interval; SIGTERM, SIGINT, SIGHUP, the death of the parent and --max-seconds
 * print the final one and exit. --simulate PPS runs the same model on a
 * synthetic stream in virtual time, without netfilter (profile calibration).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <linux/netfilter.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>
#include <libnetfilter_queue/libnetfilter_queue.h>

#define MAX_LISTENERS 16
#define MAX_KNOTS 16
/* Applied delays are histogrammed in 50 us bins up to 2 s; the maximum is kept exactly. */
#define BIN_MS 0.05
#define BINS 40000
/* Packets one direction may hold at once: a 300 ms stall of a 375 packet/s stream is 113. */
#define RING 8192
#define BURST_BINS 8
/* A release due within this much is done now rather than after another timer round. */
#define SLACK_MS 0.02

struct dist { /* inverse CDF: u[0] = 0 < ... < u[n-1] = 1; n == 0 means always 0 */
  int n;
  double u[MAX_KNOTS], v[MAX_KNOTS];
};

struct dir_params {
  double delay_ms, loss_rate, loss_mean_burst;
  int loss_max_burst; /* 0: unbounded */
  struct dist jitter;
};

struct window {
  double start, end;
  uint32_t held[2];
};

struct windows { /* one link's stall (or hold) schedule, generated lazily in time order */
  const struct dist *interval, *duration; /* interval->n == 0: none */
  uint64_t rng;
  double next_start;
  struct window *w;
  size_t n, cap, report_from;
};

struct stream { /* one direction of one link */
  int link, dir; /* dir 0: down (to the listener), 1: up */
  struct nfq_q_handle *qh;
  const struct dir_params *p;
  struct windows *stalls, *holds; /* holds: down only, else NULL */
  uint64_t rng_loss, rng_jitter;
  int bad, run; /* Gilbert-Elliott state; consecutive drops so far */
  size_t stall_cur, hold_cur;
  double last_release;
  uint32_t id[RING];
  double arrival[RING], release[RING];
  size_t head, len;
  /* counters of the current report interval */
  uint64_t packets, passed, dropped, overflow;
  uint64_t bursts[BURST_BINS];
  uint32_t longest_run, hist[BINS];
  double max_delay;
};

static struct dir_params params[2];
static struct dist stall_interval, stall_duration, hold_interval, hold_duration;
static struct stream *streams[2 * MAX_LISTENERS];
static struct windows stall_sched[MAX_LISTENERS], hold_sched[MAX_LISTENERS];
static int links = 1;
static uint64_t seed = 1;
static double max_seconds = 600, report_from_ms, t0_ms;
static int simulated;

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void fail(const char *what) {
  fprintf(stderr, "nh-impair: %s\n", what);
  exit(2);
}

/* splitmix64: tiny, and good enough that every (link, direction, purpose) gets an independent stream from one seed. */
static uint64_t next_u64(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

static double uniform(uint64_t *s) { return (next_u64(s) >> 11) * 0x1.0p-53; }

static uint64_t derive(int link, int purpose) {
  uint64_t s = seed ^ (0x5851f42d4c957f2dULL * (uint64_t)(link * 8 + purpose + 1));
  next_u64(&s);
  return s;
}

static double sample(const struct dist *d, double u) {
  if (d->n == 0) return 0;
  int k = 1;
  while (k < d->n - 1 && u >= d->u[k]) k++;
  double span = d->u[k] - d->u[k - 1];
  return d->v[k - 1] + (span > 0 ? (u - d->u[k - 1]) / span : 0) * (d->v[k] - d->v[k - 1]);
}

/* --- windows: stalls and power-save holds --------------------------------- */

static struct window *window_at(struct windows *ws, size_t i) {
  while (ws->n <= i) {
    if (ws->n == ws->cap) {
      ws->cap = ws->cap ? 2 * ws->cap : 64;
      ws->w = realloc(ws->w, ws->cap * sizeof *ws->w);
      if (!ws->w) fail("out of memory");
    }
    double d = sample(ws->duration, uniform(&ws->rng));
    double gap = sample(ws->interval, uniform(&ws->rng));
    struct window *w = &ws->w[ws->n++];
    w->start = ws->next_start;
    w->end = w->start + d;
    w->held[0] = w->held[1] = 0;
    /* Windows never overlap (the profile schema also keeps interval.min >= duration.max). */
    ws->next_start = w->start + (gap > d ? gap : d);
  }
  return &ws->w[i];
}

/* Draws the schedule up to `t`, so a report lists the windows that passed with no traffic in them too. */
static void windows_until(struct windows *ws, double t) {
  if (ws->interval->n == 0) return;
  while (ws->n == 0 || ws->w[ws->n - 1].start <= t) window_at(ws, ws->n);
}

static void windows_init(struct windows *ws, const struct dist *interval, const struct dist *duration, uint64_t rng, double t0) {
  ws->interval = interval;
  ws->duration = duration;
  ws->rng = rng;
  ws->next_start = t0 + sample(interval, uniform(&ws->rng));
}

/* Moves a release time `r` that falls inside a window to the window's end. `*cur` stops at the first window not
 * ended before r and only ever advances, as r does per stream. */
static double push_out(struct windows *ws, size_t *cur, double r) {
  if (!ws || ws->interval->n == 0) return r;
  for (;;) {
    struct window *w = window_at(ws, *cur);
    if (w->end < r) {
      (*cur)++;
      continue;
    }
    return w->start <= r && r < w->end ? w->end : r;
  }
}

/* "Held" = released when the window ends: those it pushed out and those queued behind them (FIFO). */
static void count_held(struct windows *ws, size_t cur, double r, int dir) {
  if (ws && ws->interval->n > 0 && cur < ws->n && ws->w[cur].end == r) ws->w[cur].held[dir]++;
}

/* --- the model ------------------------------------------------------------ */

static int lose(struct stream *s) {
  const struct dir_params *p = s->p;
  if (p->loss_rate <= 0) return 0;
  int lost = s->bad;
  /* Stationary P(bad) = rate with a mean stay in "bad" of mean_burst packets. */
  double r = 1 / p->loss_mean_burst, g = p->loss_rate * r / (1 - p->loss_rate);
  double u = uniform(&s->rng_loss);
  if (s->bad) s->bad = !(u < r || (p->loss_max_burst > 0 && s->run + 1 >= p->loss_max_burst));
  else s->bad = u < g;
  return lost;
}

static void end_run(struct stream *s) {
  if (s->run == 0) return;
  s->bursts[(s->run > BURST_BINS ? BURST_BINS : s->run) - 1]++;
  if ((uint32_t)s->run > s->longest_run) s->longest_run = s->run;
  s->run = 0;
}

/* A packet reached the queue at `now`: returns its release time, or -1 to drop it. */
static double admit(struct stream *s, double now) {
  s->packets++;
  if (lose(s)) {
    s->dropped++;
    s->run++;
    return -1;
  }
  end_run(s);
  if (s->len == RING) {
    s->overflow++;
    return -1;
  }
  double r = now + s->p->delay_ms + sample(&s->p->jitter, uniform(&s->rng_jitter));
  if (r < s->last_release) r = s->last_release;
  /* A hold may end inside a stall and the reverse: repeat until r is outside both. */
  for (double before = -1; r != before;) {
    before = r;
    r = push_out(s->stalls, &s->stall_cur, r);
    r = push_out(s->holds, &s->hold_cur, r);
  }
  count_held(s->stalls, s->stall_cur, r, s->dir);
  count_held(s->holds, s->hold_cur, r, s->dir);
  s->last_release = r;
  size_t at = (s->head + s->len++) % RING;
  s->arrival[at] = now;
  s->release[at] = r;
  return r;
}

static void record_delay(struct stream *s, double d) {
  s->passed++;
  if (d < 0) d = 0;
  size_t bin = (size_t)(d / BIN_MS);
  s->hist[bin < BINS ? bin : BINS - 1]++;
  if (d > s->max_delay) s->max_delay = d;
}

/* --- report --------------------------------------------------------------- */

static double quantile(const struct stream *s, double q) {
  if (s->passed == 0) return 0;
  uint64_t want = (uint64_t)(q * s->passed + 0.999999), seen = 0;
  for (size_t b = 0; b < BINS; b++) {
    seen += s->hist[b];
    if (seen >= want) {
      double edge = (b + 1) * BIN_MS;
      return edge < s->max_delay ? edge : s->max_delay;
    }
  }
  return s->max_delay;
}

static void print_windows(struct windows *ws, int dir, double to, int full) {
  if (!ws || ws->interval->n == 0) {
    printf(full ? "[]" : "{\"count\":0,\"held\":0,\"meanDurationMs\":0,\"maxDurationMs\":0}");
    return;
  }
  size_t count = 0;
  uint64_t held = 0;
  double sum = 0, max = 0;
  if (full) printf("[");
  for (size_t i = ws->report_from; i < ws->n && ws->w[i].start <= to; i++) {
    struct window *w = &ws->w[i];
    double d = w->end - w->start;
    if (full) printf("%s{\"atMs\":%.3f,\"durationMs\":%.3f,\"held\":%" PRIu32 "}", count ? "," : "", w->start, d, w->held[dir]);
    count++;
    held += w->held[dir];
    sum += d;
    if (d > max) max = d;
  }
  if (full) printf("]");
  else printf("{\"count\":%zu,\"held\":%" PRIu64 ",\"meanDurationMs\":%.3f,\"maxDurationMs\":%.3f}", count, held, count ? sum / count : 0, max);
}

static void print_stream(struct stream *s, double to) {
  printf("{\"packets\":%" PRIu64 ",\"passed\":%" PRIu64 ",\"dropped\":%" PRIu64 ",\"overflow\":%" PRIu64 ",\"pending\":%zu,\"dropBursts\":[",
         s->packets, s->passed, s->dropped, s->overflow, s->len);
  /* A run still going counts as a burst of its length so far. */
  for (int b = 0; b < BURST_BINS; b++) {
    uint64_t n = s->bursts[b] + (s->run > 0 && (s->run > BURST_BINS ? BURST_BINS : s->run) == b + 1);
    printf("%s%" PRIu64, b ? "," : "", n);
  }
  uint32_t longest = (uint32_t)s->run > s->longest_run ? (uint32_t)s->run : s->longest_run;
  printf("],\"longestDropBurst\":%" PRIu32 ",\"delayMs\":{\"p50\":%.3f,\"p95\":%.3f,\"p99\":%.3f,\"max\":%.3f},\"stalls\":", longest,
         quantile(s, 0.5), quantile(s, 0.95), quantile(s, 0.99), s->max_delay);
  print_windows(s->stalls, s->dir, to, 1);
  printf(",\"holds\":");
  print_windows(s->holds, s->dir, to, 0);
  printf("}");
}

/* The kernel's own drops on our queues (queue full, or a netlink message it could not send us). */
static void kernel_drops(uint64_t *queue, uint64_t *user) {
  *queue = *user = 0;
  FILE *f = fopen("/proc/net/netfilter/nfnetlink_queue", "r");
  if (!f) return;
  unsigned num, portid, total, mode, range, qd, ud, idseq, one;
  while (fscanf(f, "%u %u %u %u %u %u %u %u %u", &num, &portid, &total, &mode, &range, &qd, &ud, &idseq, &one) == 9) {
    if (num < 2u * links) {
      *queue += qd;
      *user += ud;
    }
  }
  fclose(f);
}

static void report(double now, const char *reason) {
  uint64_t qd = 0, ud = 0;
  if (!simulated) kernel_drops(&qd, &ud);
  for (int l = 0; l < links; l++) {
    windows_until(&stall_sched[l], now);
    windows_until(&hold_sched[l], now);
  }
  printf("{\"type\":\"report\",\"final\":%s,", reason ? "true" : "false");
  if (reason) printf("\"reason\":\"%s\",", reason);
  printf("\"simulated\":%s,\"seed\":%" PRIu64 ",\"fromMs\":%.3f,\"toMs\":%.3f,\"kernelDropped\":%" PRIu64 ",\"userDropped\":%" PRIu64 ",\"links\":[",
         simulated ? "true" : "false", seed, report_from_ms, now, qd, ud);
  for (int l = 0; l < links; l++) {
    printf("%s{\"link\":%d,\"down\":", l ? "," : "", l);
    print_stream(streams[2 * l], now);
    printf(",\"up\":");
    print_stream(streams[2 * l + 1], now);
    printf("}");
  }
  printf("]}\n");
  fflush(stdout);
}

/* Starts a new report interval; packets still held keep their place. */
static void reset(double now) {
  for (int i = 0; i < 2 * links; i++) {
    struct stream *s = streams[i];
    s->packets = s->passed = s->dropped = s->overflow = 0;
    memset(s->bursts, 0, sizeof s->bursts);
    memset(s->hist, 0, sizeof s->hist);
    s->longest_run = 0;
    s->max_delay = 0;
  }
  for (int l = 0; l < links; l++) {
    struct windows *ws[2] = {&stall_sched[l], &hold_sched[l]};
    for (int k = 0; k < 2; k++)
      while (ws[k]->report_from < ws[k]->n && ws[k]->w[ws[k]->report_from].start <= now) ws[k]->report_from++;
  }
  report_from_ms = now;
}

/* --- arguments ------------------------------------------------------------ */

/* "u:v/u:v/...": quantile knots, u from 0 to 1 increasing, v not decreasing. */
static void parse_dist(const char *text, struct dist *d, const char *what) {
  char msg[160];
  d->n = 0;
  const char *p = text;
  while (*p) {
    char *end;
    if (d->n == MAX_KNOTS) break;
    d->u[d->n] = strtod(p, &end);
    if (*end != ':') break;
    d->v[d->n] = strtod(end + 1, &end);
    d->n++;
    if (*end == '/') p = end + 1;
    else if (*end == '\0') p = end;
    else break;
  }
  int ok = *p == '\0' && d->n >= 2 && d->u[0] == 0 && d->u[d->n - 1] == 1 && d->v[0] >= 0;
  for (int k = 1; ok && k < d->n; k++) ok = d->u[k] > d->u[k - 1] && d->v[k] >= d->v[k - 1];
  if (!ok) {
    snprintf(msg, sizeof msg, "%s: \"%.60s\" is not a distribution; allowed: u:v/u:v/... with u rising from 0 to 1 and v >= 0 not falling", what, text);
    fail(msg);
  }
}

static double parse_num(const char *text, double lo, double hi, const char *what) {
  char *end, msg[160];
  double v = strtod(text, &end);
  if (end == text || *end != '\0' || !(v >= lo && v <= hi)) {
    snprintf(msg, sizeof msg, "%s: got \"%.40s\"; allowed: a number from %g to %g", what, text, lo, hi);
    fail(msg);
  }
  return v;
}

/* --down/--up: delay=MS,jitter=DIST,loss=RATE,burst=MEAN,maxburst=N */
static void parse_dir(char *text, struct dir_params *p, const char *flag) {
  char what[64], msg[160];
  p->loss_mean_burst = 1;
  for (char *kv = strtok(text, ","); kv; kv = strtok(NULL, ",")) {
    char *eq = strchr(kv, '=');
    if (!eq) {
      snprintf(msg, sizeof msg, "%s: \"%.40s\" is not key=value", flag, kv);
      fail(msg);
    }
    *eq = '\0';
    snprintf(what, sizeof what, "%s %s", flag, kv);
    const char *v = eq + 1;
    if (!strcmp(kv, "delay")) p->delay_ms = parse_num(v, 0, 10000, what);
    else if (!strcmp(kv, "jitter")) parse_dist(v, &p->jitter, what);
    else if (!strcmp(kv, "loss")) p->loss_rate = parse_num(v, 0, 0.999, what);
    else if (!strcmp(kv, "burst")) p->loss_mean_burst = parse_num(v, 1, 1000, what);
    else if (!strcmp(kv, "maxburst")) p->loss_max_burst = (int)parse_num(v, 0, 1000, what);
    else {
      snprintf(msg, sizeof msg, "%s: unknown key \"%.40s\"; allowed: delay, jitter, loss, burst, maxburst", flag, kv);
      fail(msg);
    }
  }
}

/* --stalls/--power-save: interval=DIST,duration=DIST */
static void parse_windows(char *text, struct dist *interval, struct dist *duration, const char *flag) {
  char what[64], msg[160];
  for (char *kv = strtok(text, ","); kv; kv = strtok(NULL, ",")) {
    char *eq = strchr(kv, '=');
    if (eq) *eq = '\0';
    snprintf(what, sizeof what, "%s %s", flag, kv);
    if (eq && !strcmp(kv, "interval")) parse_dist(eq + 1, interval, what);
    else if (eq && !strcmp(kv, "duration")) parse_dist(eq + 1, duration, what);
    else {
      snprintf(msg, sizeof msg, "%s: unknown key \"%.40s\"; allowed: interval=DIST, duration=DIST", flag, kv);
      fail(msg);
    }
  }
  if ((interval->n == 0) != (duration->n == 0)) {
    snprintf(msg, sizeof msg, "%s: needs both interval and duration", flag);
    fail(msg);
  }
}

static const char *USAGE =
    "usage: nh-impair [--links N] [--seed S] [--max-seconds T] [--down K=V,...] [--up K=V,...]\n"
    "                 [--stalls interval=DIST,duration=DIST] [--power-save interval=DIST,duration=DIST] [--simulate PPS]\n"
    "  direction keys: delay=MS jitter=DIST loss=RATE burst=MEAN maxburst=N; DIST: u:v/u:v/... (quantile knots, ms)\n"
    "  binds NFQUEUE 2i (link i towards the listener) and 2i+1 (towards the box); JSON reports on stdout\n";

static double simulate_pps;

static void parse_args(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--help")) {
      fputs(USAGE, stdout);
      exit(0);
    }
    if (i + 1 >= argc) {
      fprintf(stderr, "nh-impair: %s needs a value\n%s", a, USAGE);
      exit(2);
    }
    char *v = argv[++i];
    if (!strcmp(a, "--links")) links = (int)parse_num(v, 1, MAX_LISTENERS, "--links");
    else if (!strcmp(a, "--seed")) {
      char *end;
      seed = strtoull(v, &end, 10);
      if (end == v || *end != '\0') fail("--seed: allowed: an unsigned integer");
    }
    else if (!strcmp(a, "--max-seconds")) max_seconds = parse_num(v, 0.1, 86400, "--max-seconds");
    else if (!strcmp(a, "--down")) parse_dir(v, &params[0], "--down");
    else if (!strcmp(a, "--up")) parse_dir(v, &params[1], "--up");
    else if (!strcmp(a, "--stalls")) parse_windows(v, &stall_interval, &stall_duration, "--stalls");
    else if (!strcmp(a, "--power-save")) parse_windows(v, &hold_interval, &hold_duration, "--power-save");
    else if (!strcmp(a, "--simulate")) simulate_pps = parse_num(v, 1, 100000, "--simulate");
    else {
      fprintf(stderr, "nh-impair: unknown option %s\n%s", a, USAGE);
      exit(2);
    }
  }
}

static void setup_streams(double t0) {
  for (int l = 0; l < links; l++) {
    windows_init(&stall_sched[l], &stall_interval, &stall_duration, derive(l, 0), t0);
    windows_init(&hold_sched[l], &hold_interval, &hold_duration, derive(l, 1), t0);
    for (int dir = 0; dir < 2; dir++) {
      struct stream *s = calloc(1, sizeof *s);
      if (!s) fail("out of memory");
      s->link = l;
      s->dir = dir;
      s->p = &params[dir];
      s->stalls = &stall_sched[l];
      s->holds = dir == 0 ? &hold_sched[l] : NULL;
      s->rng_loss = derive(l, 2 + 2 * dir);
      s->rng_jitter = derive(l, 3 + 2 * dir);
      streams[2 * l + dir] = s;
    }
  }
}

/* --- virtual time --------------------------------------------------------- */

static void run_simulation(void) {
  double step = 1000 / simulate_pps, end = max_seconds * 1000;
  for (double t = 0; t < end; t += step) {
    for (int i = 0; i < 2 * links; i++) {
      struct stream *s = streams[i];
      /* Virtual time: releases due by now happen exactly on time. */
      while (s->len && s->release[s->head] <= t) {
        record_delay(s, s->release[s->head] - s->arrival[s->head]);
        s->head = (s->head + 1) % RING;
        s->len--;
      }
      admit(s, t);
    }
  }
  report(end, "simulated");
}

/* --- real time ------------------------------------------------------------ */

static int on_packet(struct nfq_q_handle *qh, struct nfgenmsg *msg, struct nfq_data *nfa, void *data) {
  (void)msg;
  struct stream *s = data;
  struct nfqnl_msg_packet_hdr *h = nfq_get_msg_packet_hdr(nfa);
  if (!h) return 0;
  uint32_t id = ntohl(h->packet_id);
  if (admit(s, now_ms()) < 0) nfq_set_verdict(qh, id, NF_DROP, 0, NULL);
  else s->id[(s->head + s->len - 1) % RING] = id;
  return 0;
}

/* Releases what is due; returns the next release time (or +inf). */
static double release_due(double now) {
  double next = 1e300;
  for (int i = 0; i < 2 * links; i++) {
    struct stream *s = streams[i];
    while (s->len && s->release[s->head] <= now + SLACK_MS) {
      nfq_set_verdict(s->qh, s->id[s->head], NF_ACCEPT, 0, NULL);
      record_delay(s, now - s->arrival[s->head]);
      s->head = (s->head + 1) % RING;
      s->len--;
    }
    if (s->len && s->release[s->head] < next) next = s->release[s->head];
  }
  return next;
}

static void arm(int tfd, double at_ms) {
  struct itimerspec its = {0};
  if (at_ms < 1e299) {
    its.it_value.tv_sec = (time_t)(at_ms / 1000);
    its.it_value.tv_nsec = (long)((at_ms - its.it_value.tv_sec * 1000.0) * 1e6);
    if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0) its.it_value.tv_nsec = 1;
  }
  timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL);
}

int main(int argc, char **argv) {
  parse_args(argc, argv);
  setvbuf(stdout, NULL, _IOFBF, 1 << 16);
  signal(SIGPIPE, SIG_IGN);
  if (simulate_pps > 0) {
    simulated = 1;
    setup_streams(0);
    run_simulation();
    return 0;
  }

  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGHUP);
  sigaddset(&mask, SIGUSR1);
  sigprocmask(SIG_BLOCK, &mask, NULL);
  int sfd = signalfd(-1, &mask, SFD_CLOEXEC);
  /* Never outlive the harness: its death ends the run (and, with it, the router namespace). */
  pid_t parent = getppid();
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (getppid() != parent) return 0;

  struct nfq_handle *h = nfq_open();
  if (!h) {
    fprintf(stderr, "nh-impair: cannot open a netfilter queue socket: %s (needs CAP_NET_ADMIN)\n", strerror(errno));
    return 1;
  }
  t0_ms = report_from_ms = now_ms();
  setup_streams(t0_ms);
  for (int i = 0; i < 2 * links; i++) {
    struct stream *s = streams[i];
    s->qh = nfq_create_queue(h, (uint16_t)i, on_packet, s);
    if (!s->qh) {
      fprintf(stderr, "nh-impair: cannot bind NFQUEUE %d: %s\n", i, strerror(errno));
      return 1;
    }
    /* Metadata only: the verdict is all we give, the packet itself never needs copying. */
    nfq_set_mode(s->qh, NFQNL_COPY_META, 0);
    nfq_set_queue_maxlen(s->qh, RING);
  }
  int fd = nfq_fd(h);
  /* A lost netlink message would leave its packet queued forever: a large buffer, and ENOBUFS counted, not fatal. */
  int rcvbuf = 8 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf);
  int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
  printf("{\"type\":\"ready\",\"links\":%d,\"queues\":[0,%d],\"t0Ms\":%.3f}\n", links, 2 * links - 1, t0_ms);
  fflush(stdout);

  double stop_at = t0_ms + max_seconds * 1000;
  char buf[8192] __attribute__((aligned));
  struct pollfd pfd[3] = {{fd, POLLIN, 0}, {sfd, POLLIN, 0}, {tfd, POLLIN, 0}};
  const char *reason = NULL;
  while (!reason) {
    double next = release_due(now_ms());
    arm(tfd, next < stop_at ? next : stop_at);
    if (poll(pfd, 3, -1) < 0 && errno != EINTR) {
      reason = "poll-failed";
      break;
    }
    if (pfd[0].revents & POLLIN) {
      for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n < 0) break; /* EAGAIN: drained; ENOBUFS: the kernel counts it (userDropped) */
        nfq_handle_packet(h, buf, (int)n);
      }
    }
    if (pfd[1].revents & POLLIN) {
      struct signalfd_siginfo si;
      if (read(sfd, &si, sizeof si) == sizeof si) {
        if (si.ssi_signo == SIGUSR1) {
          double now = now_ms();
          report(now, NULL);
          reset(now);
        } else reason = "signal";
      }
    }
    if (pfd[2].revents & POLLIN) {
      uint64_t ticks;
      if (read(tfd, &ticks, sizeof ticks) < 0) ticks = 0;
    }
    if (now_ms() >= stop_at) reason = "max-seconds";
  }
  report(now_ms(), reason);
  for (int i = 0; i < 2 * links; i++) nfq_destroy_queue(streams[i]->qh);
  nfq_close(h);
  return 0;
}
