import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildImage } from '../../e2e/harness/oci-image';
import { imageHandlers } from '../../src/cri/image';
import { isCorralError } from '../../src/core/errors';
import { nullLogger } from '../../src/log/logger';
import type { CallContext } from '../../src/cri/types';
import { FakeRegistry } from './fake-registry';
import { withService } from './helpers';

const img = buildImage({ layers: [[{ name: 'f', type: 'file', data: Buffer.from('x') }]], config: { User: '1000' } });
const ctx = (): CallContext => ({ method: 'test', signal: new AbortController().signal, log: nullLogger });
const spec = (image: string) => ({ image, annotations: {}, user_specified_image: '', runtime_handler: '', image_ref: '' });

test('CRI image handlers: pull, list, status (verbose), fs info, stream, remove', async () => {
  const reg = await new FakeRegistry({ auth: 'basic', username: 'u', password: 'p' }).start();
  try {
    reg.addImage('t/img', '1', img);
    await withService(async (svc) => {
      const h = imageHandlers(svc);
      const u = h.unary!;
      const ref = `${reg.host}/t/img:1`;
      await assert.rejects(u.PullImage({ image: spec(''), auth: null, sandbox_config: null }, ctx()), (e: unknown) => isCorralError(e, 'InvalidArgument'));
      await assert.rejects(u.PullImage({ image: spec('Bad//Ref'), auth: null, sandbox_config: null }, ctx()), (e: unknown) => isCorralError(e, 'InvalidArgument'));
      const auth = { username: '', password: '', auth: Buffer.from('u:p').toString('base64'), server_address: '', identity_token: '', registry_token: '' };
      const pulled = await u.PullImage({ image: spec(ref), auth, sandbox_config: null }, ctx());
      assert.equal(pulled.image_ref, img.config.digest);
      const list = await u.ListImages({ filter: null }, ctx());
      assert.equal(list.images.length, 1);
      assert.equal(list.images[0].uid.value, '1000');
      assert.equal(list.images[0].username, '');
      assert.equal(typeof list.images[0].size, 'string');
      const filtered = await u.ListImages({ filter: { image: spec('other/thing') } }, ctx());
      assert.equal(filtered.images.length, 0);
      const st = await u.ImageStatus({ image: spec(ref), verbose: true }, ctx());
      assert.equal(st.image.id, img.config.digest);
      const info = JSON.parse(st.info.info);
      assert.equal(info.manifestDigest, img.manifest.digest);
      assert.equal(info.imageSpec.config.User, '1000');
      assert.equal(info.layers.length, 1);
      const missing = await u.ImageStatus({ image: spec('nope:1'), verbose: false }, ctx());
      assert.equal(missing.image, null);
      const fsi = await u.ImageFsInfo({}, ctx());
      assert.ok(BigInt(fsi.image_filesystems[0].used_bytes.value) > 0n);
      assert.ok(fsi.image_filesystems[0].fs_id.mountpoint.startsWith('/'));
      const sent: unknown[] = [];
      await h.stream!.StreamImages({ filter: null }, ctx(), { write: (m: unknown) => (sent.push(m), true), waitDrain: async () => {} });
      assert.equal((sent[0] as { images: unknown[] }).images.length, 1);
      await u.RemoveImage({ image: spec(img.config.digest) }, ctx());
      assert.equal((await u.ListImages({ filter: null }, ctx())).images.length, 0);
      await u.RemoveImage({ image: spec(img.config.digest) }, ctx());
    });
  } finally {
    await reg.stop();
  }
});
