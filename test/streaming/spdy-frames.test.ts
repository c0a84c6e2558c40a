import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as zlib from 'node:zlib';
import {
  FLAG_FIN,
  FLAG_UNIDIRECTIONAL,
  FrameDecoder,
  SpdyProtocolError,
  decodeHeaderBlock,
  encodeData,
  encodeGoAway,
  encodeHeaderBlock,
  encodePing,
  encodeRstStream,
  encodeSettings,
  encodeSynReply,
  encodeSynStream,
  encodeWindowUpdate,
} from '../../src/streaming/spdy/frames';
import { SPDY3_DICTIONARY, SPDY3_DICTIONARY_ID } from '../../src/streaming/spdy/dictionary';
import { HeaderCompressor, HeaderDecompressor } from '../../src/streaming/spdy/header-compression';

function decodeAll(buf: Buffer, chunk = buf.length) {
  const d = new FrameDecoder();
  const out = [];
  for (let i = 0; i < buf.length; i += chunk) {
    d.push(buf.subarray(i, i + chunk));
    let f;
    while ((f = d.next())) out.push(f);
  }
  assert.equal(d.pendingBytes, 0);
  return out;
}

test('dictionary is the 1423-byte SPDY/3 dictionary with its well-known Adler-32', () => {
  assert.equal(SPDY3_DICTIONARY.length, 1423);
  // Adler-32 computed here, not taken from the constant under test.
  let a = 1;
  let b = 0;
  for (const byte of SPDY3_DICTIONARY) {
    a = (a + byte) % 65521;
    b = (b + a) % 65521;
  }
  assert.equal(((b << 16) | a) >>> 0, SPDY3_DICTIONARY_ID);
  assert.equal(SPDY3_DICTIONARY_ID, 0xe3c6a7c2);
});

test('control frame header layout: control bit, version 3, type, flags, 24-bit length', () => {
  const f = encodeRstStream(5, 5);
  assert.deepEqual([...f.subarray(0, 8)], [0x80, 0x03, 0x00, 0x03, 0x00, 0x00, 0x00, 0x08]);
  assert.deepEqual([...f.subarray(8)], [0, 0, 0, 5, 0, 0, 0, 5]);
  const d = encodeData(7, Buffer.from('hi'), true);
  assert.deepEqual([...d], [0, 0, 0, 7, FLAG_FIN, 0, 0, 2, 0x68, 0x69]);
});

test('every frame type round-trips through the decoder, whole and byte by byte', () => {
  const block = Buffer.from('compressed-block');
  const wire = Buffer.concat([
    encodeSynStream(1, block, { fin: true, unidirectional: true, associatedId: 0, priority: 3 }),
    encodeSynReply(1, block, true),
    encodeData(1, Buffer.from('payload'), false),
    encodeData(3, Buffer.alloc(0), true),
    encodeRstStream(3, 5),
    encodePing(7),
    encodeGoAway(9, 0),
    encodeWindowUpdate(1, 65536),
    encodeSettings([{ id: 7, value: 1000 }, { flags: 1, id: 4, value: 2 }]),
  ]);
  for (const chunk of [wire.length, 1, 3]) {
    const frames = decodeAll(wire, chunk);
    assert.equal(frames.length, 9);
    const [syn, reply, data, fin, rst, ping, goaway, wu, settings] = frames as any[];
    assert.equal(syn.kind, 'syn_stream');
    assert.equal(syn.streamId, 1);
    assert.equal(syn.flags, FLAG_FIN | FLAG_UNIDIRECTIONAL);
    assert.equal(syn.priority, 3);
    assert.equal(syn.version, 3);
    assert.deepEqual(syn.block, block);
    assert.equal(reply.kind, 'syn_reply');
    assert.equal(reply.flags, FLAG_FIN);
    assert.deepEqual(reply.block, block);
    assert.deepEqual([data.kind, data.streamId, data.flags, data.data.toString()], ['data', 1, 0, 'payload']);
    assert.deepEqual([fin.kind, fin.streamId, fin.flags, fin.data.length], ['data', 3, FLAG_FIN, 0]);
    assert.deepEqual([rst.kind, rst.streamId, rst.status], ['rst_stream', 3, 5]);
    assert.deepEqual([ping.kind, ping.id], ['ping', 7]);
    assert.deepEqual([goaway.kind, goaway.lastStreamId, goaway.status], ['goaway', 9, 0]);
    assert.deepEqual([wu.kind, wu.streamId, wu.delta], ['window_update', 1, 65536]);
    assert.deepEqual(settings.entries, [{ flags: 0, id: 7, value: 1000 }, { flags: 1, id: 4, value: 2 }]);
  }
});

test('unknown control frame types are surfaced as unknown, not errors', () => {
  const f = Buffer.from([0x80, 0x03, 0x00, 0x0a, 0x00, 0x00, 0x00, 0x02, 0xaa, 0xbb]);
  const [u] = decodeAll(f) as any[];
  assert.equal(u.kind, 'unknown');
  assert.equal(u.type, 10);
});

test('truncated control payloads are protocol errors', () => {
  const d = new FrameDecoder();
  d.push(Buffer.from([0x80, 0x03, 0x00, 0x03, 0x00, 0x00, 0x00, 0x02, 0, 0]));
  assert.throws(() => d.next(), SpdyProtocolError);
});

test('frames larger than the decoder limit are rejected before buffering them', () => {
  const d = new FrameDecoder(1024);
  d.push(Buffer.from([0, 0, 0, 1, 0, 0x01, 0x00, 0x00]));
  assert.throws(() => d.next(), /exceeds limit/);
});

test('header block: lowercase names, NUL-separated values, decode of multi-values', () => {
  const block = encodeHeaderBlock({ StreamType: 'stdin', port: '80' });
  const h = decodeHeaderBlock(block);
  assert.deepEqual(h, { streamtype: 'stdin', port: '80' });
  // hand-built block with a NUL-separated value
  const raw = Buffer.concat([
    Buffer.from([0, 0, 0, 1, 0, 0, 0, 1]),
    Buffer.from('a'),
    Buffer.from([0, 0, 0, 3]),
    Buffer.from('x\0y'),
  ]);
  assert.deepEqual(decodeHeaderBlock(raw), { a: 'x, y' });
  assert.throws(() => decodeHeaderBlock(Buffer.from([0, 0, 0, 1, 0, 0, 0, 9, 0x61])), SpdyProtocolError);
});

test('compressor output is one zlib stream that a shared-context inflater decodes block by block', async () => {
  const c = new HeaderCompressor();
  const first = c.compress(encodeHeaderBlock({ streamtype: 'error' }));
  // zlib header with FDICT and the SPDY dictionary id
  assert.deepEqual([...first.subarray(0, 2)], [0x78, 0xbb]);
  assert.equal(first.readUInt32BE(2), SPDY3_DICTIONARY_ID);
  const second = c.compress(encodeHeaderBlock({ streamtype: 'stdout', port: '8080' }));
  assert.notDeepEqual([...second.subarray(0, 2)], [0x78, 0xbb]);
  const big = c.compress(encodeHeaderBlock({ x: 'v'.repeat(70_000) })); // spans two stored blocks
  // every block ends with the sync-flush marker, which Go's inflater needs to release the bytes
  for (const b of [first, second, big]) assert.deepEqual([...b.subarray(b.length - 5)], [0, 0, 0, 0xff, 0xff]);

  // Independent check: the three outputs concatenated are one valid zlib stream whose content is
  // the three plain blocks in order.
  const plain = zlib.inflateSync(Buffer.concat([first, second, big]), {
    dictionary: SPDY3_DICTIONARY,
    finishFlush: zlib.constants.Z_SYNC_FLUSH,
  });
  const expected = Buffer.concat([
    encodeHeaderBlock({ streamtype: 'error' }),
    encodeHeaderBlock({ streamtype: 'stdout', port: '8080' }),
    encodeHeaderBlock({ x: 'v'.repeat(70_000) }),
  ]);
  assert.deepEqual(plain, expected);
  // and our own decompressor reads them block by block, including the one larger than zlib's chunk size
  const d = new HeaderDecompressor();
  assert.deepEqual(decodeHeaderBlock(await d.decompress(first)), { streamtype: 'error' });
  assert.deepEqual(decodeHeaderBlock(await d.decompress(second)), { streamtype: 'stdout', port: '8080' });
  assert.equal(decodeHeaderBlock(await d.decompress(big)).x.length, 70_000);
  d.close();
});

test('decompressor inflates real zlib output (dictionary, sync flush, shared context) and our own', async () => {
  const deflate = zlib.createDeflate({ dictionary: SPDY3_DICTIONARY, level: 9 });
  const chunks: Buffer[] = [];
  deflate.on('data', (c: Buffer) => chunks.push(c));
  const blocks: Record<string, string>[] = [{ streamtype: "error" }, { streamtype: "stdin" }, { streamtype: "data", port: "80", requestid: "0" }];
  const wire: Buffer[] = [];
  for (const h of blocks) {
    await new Promise<void>((r) => {
      deflate.write(encodeHeaderBlock(h));
      deflate.flush(zlib.constants.Z_SYNC_FLUSH, () => r());
    });
    await new Promise((r) => setImmediate(r));
    wire.push(Buffer.concat(chunks.splice(0)));
  }
  deflate.close();
  const d = new HeaderDecompressor();
  for (let i = 0; i < blocks.length; i++) assert.deepEqual(decodeHeaderBlock(await d.decompress(wire[i])), blocks[i]);
  d.close();

  const c = new HeaderCompressor();
  const d2 = new HeaderDecompressor();
  for (const h of blocks) assert.deepEqual(decodeHeaderBlock(await d2.decompress(c.compress(encodeHeaderBlock(h)))), h);
  d2.close();
});

test('decompressor rejects garbage instead of hanging', async () => {
  const d = new HeaderDecompressor();
  await assert.rejects(d.decompress(Buffer.from([0x12, 0x34, 0x56, 0x78, 0x9a])), SpdyProtocolError);
  d.close();
});
