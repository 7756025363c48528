// A progress display whose total is learned from the first report (trainer's Progress underneath).
import { Progress } from '@peft-ts/trainer';

export function progressBar(label: string): { update(done: number, total: number, fields?: Record<string, string>): void; finish(): void } {
  let bar: Progress | null = null;
  return {
    update(done, total, fields = {}) {
      bar ??= new Progress({ total, label, stream: process.stderr });
      bar.update(done, fields);
    },
    finish() {
      bar?.finish();
    },
  };
}
