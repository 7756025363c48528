// Choosing a model folder: the File System Access API where the browser has it, else a file
// input with `webkitdirectory` (every current browser), both giving the folder's files.
import type { ModelChoice } from './protocol.js';

type FilesChoice = Extract<ModelChoice, { kind: 'files' }>;

// Only the files a model directory needs: weights, configs and tokenizer; not README.md etc.
const WANTED = /(\.safetensors|\.json|\.model|\.txt)$/;

interface DirectoryPickerWindow {
  showDirectoryPicker?: (options?: { mode?: 'read' | 'readwrite'; id?: string }) => Promise<FileSystemDirectoryHandle>;
}

async function collect(dir: FileSystemDirectoryHandle, prefix: string, into: { path: string; file: File }[]): Promise<void> {
  const entries = (dir as unknown as { entries(): AsyncIterable<[string, FileSystemHandle]> }).entries();
  for await (const [name, handle] of entries) {
    const path = prefix === '' ? name : `${prefix}/${name}`;
    if (handle.kind === 'file') {
      if (WANTED.test(name)) into.push({ path, file: await (handle as FileSystemFileHandle).getFile() });
    } else if (!name.startsWith('.')) await collect(handle as FileSystemDirectoryHandle, path, into);
  }
}

/**
 * The folder the user picks with `showDirectoryPicker`; undefined when the browser lacks it (use
 * the file input then), null when the user cancels.
 */
export async function pickDirectory(): Promise<FilesChoice | null | undefined> {
  const picker = (window as unknown as DirectoryPickerWindow).showDirectoryPicker;
  if (!picker) return undefined;
  let dir: FileSystemDirectoryHandle;
  try {
    dir = await picker.call(window, { mode: 'read', id: 'peft-ts-model' });
  } catch (error) {
    if (error instanceof DOMException && error.name === 'AbortError') return null;
    throw error;
  }
  const files: { path: string; file: File }[] = [];
  await collect(dir, '', files);
  return { kind: 'files', name: dir.name, files };
}

/** The files of a `webkitdirectory` input, with paths relative to the chosen folder. */
export function filesFromInput(list: FileList | null): FilesChoice | null {
  if (!list || list.length === 0) return null;
  const files: { path: string; file: File }[] = [];
  let name = 'model';
  for (const file of Array.from(list)) {
    const relative = file.webkitRelativePath || file.name;
    const slash = relative.indexOf('/');
    if (slash > 0) name = relative.slice(0, slash);
    const path = slash > 0 ? relative.slice(slash + 1) : relative;
    if (WANTED.test(path) && !path.split('/').some((part) => part.startsWith('.'))) files.push({ path, file });
  }
  return { kind: 'files', name, files };
}
