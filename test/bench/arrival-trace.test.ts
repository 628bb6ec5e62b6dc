import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { TRACE_HEADER, TraceFormatError, formatTrace, parseTrace, sortByArrival } from '../../bench/jitter/arrival-trace';

/** The trace files the `wifi` bench writes and the replay tool reads (seq,capture_ms,arrival_ms,flags). */

describe('arrival traces: format', () => {
  test('a trace written and read back is the same, in arrival order (ties in seq order, across the seq wrap)', () => {
    const t = sortByArrival([2 ** 32 - 1, 0, 5, 3], [1, 3.666667, 14.333333, 9], [20, 20, 15.5, 12.25], [1, 0, 0, 0]);
    assert.deepEqual(Array.from(t.seq), [3, 5, 2 ** 32 - 1, 0]);
    const back = parseTrace(formatTrace(t), 'mem');
    assert.deepEqual(Array.from(back.seq), Array.from(t.seq));
    assert.deepEqual(Array.from(back.arrivalMs), [12.25, 15.5, 20, 20]);
    assert.deepEqual(Array.from(back.captureMs), Array.from(t.captureMs));
    assert.deepEqual(Array.from(back.flags), [0, 0, 1, 0]);
  });

  test('CRLF line ends and a missing final newline are accepted', () => {
    const t = parseTrace(`${TRACE_HEADER}\r\n1,2.5,3.5,0\r\n2,5.2,6,1`, 'crlf.csv');
    assert.deepEqual(Array.from(t.seq), [1, 2]);
    assert.equal(t.flags[1], 1);
  });

  const bad: [string, string, string][] = [
    ['a wrong header', 'seq,capture,arrival,flags\n1,2,3,0\n', 'x.csv: line 1 is "seq,capture,arrival,flags"; allowed: exactly the header "seq,capture_ms,arrival_ms,flags"'],
    ['a line with three fields', `${TRACE_HEADER}\n1,2,3,0\n4,5,6\n`, 'x.csv: line 3 has 3 fields ("4,5,6"); allowed: 4 (seq,capture_ms,arrival_ms,flags)'],
    ['a seq out of range', `${TRACE_HEADER}\n4294967296,2,3,0\n`, 'x.csv: line 2: seq is "4294967296"; allowed: an integer 0-4294967295'],
    ['a fractional seq', `${TRACE_HEADER}\n1.5,2,3,0\n`, 'x.csv: line 2: seq is "1.5"; allowed: an integer 0-4294967295'],
    ['an arrival that is not a number', `${TRACE_HEADER}\n1,2,soon,0\n`, 'x.csv: line 2: arrival_ms is "soon"; allowed: a finite number of ms, 0 or more'],
    ['a negative capture time', `${TRACE_HEADER}\n1,-2,3,0\n`, 'x.csv: line 2: capture_ms is "-2"; allowed: a finite number of ms, 0 or more'],
    ['an empty field', `${TRACE_HEADER}\n1,2,,0\n`, 'x.csv: line 2: arrival_ms is ""; allowed: a finite number of ms, 0 or more'],
    ['flags above a byte', `${TRACE_HEADER}\n1,2,3,256\n`, 'x.csv: line 2: flags is "256"; allowed: an integer 0-255'],
    ['no packets', `${TRACE_HEADER}\n`, 'x.csv: no packets after the header; allowed: at least one line seq,capture_ms,arrival_ms,flags'],
  ];
  for (const [what, text, message] of bad) {
    test(`${what} is refused naming the line, the field and the value`, () => {
      assert.throws(
        () => parseTrace(text, 'x.csv'),
        (e: unknown) => e instanceof TraceFormatError && (e as Error).message === message,
      );
    });
  }
});
