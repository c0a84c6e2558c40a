/**
 * Preloaded into the corral daemon (NODE_OPTIONS=--require …) to write a V8 CPU profile on exit into
 * $CORRAL_CPU_PROF_DIR: node 20 refuses --cpu-prof in NODE_OPTIONS, and the e2e harness passes its
 * arguments to corral, not to node. The in-thread inspector session answers synchronously, so the
 * profile can be taken in the 'exit' handler.
 */
import { Session } from 'node:inspector';
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';

const dir = process.env.CORRAL_CPU_PROF_DIR;
if (dir) {
  const session = new Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.setSamplingInterval', { interval: 200 });
  session.post('Profiler.start');
  process.on('exit', () => {
    session.post('Profiler.stop', (err, res) => {
      if (!err) writeFileSync(path.join(dir, `corral-${process.pid}.cpuprofile`), JSON.stringify(res.profile));
    });
  });
}
