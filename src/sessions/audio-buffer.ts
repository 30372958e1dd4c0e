/**
 * The session's input audio buffer: binary frames appended until a commit takes them. Bounded by
 * `maxUtteranceBytes`; chunks are kept as received and concatenated once, at commit.
 */
export class AudioBuffer {
  private chunks: Buffer[] = [];
  private size = 0;

  constructor(private readonly maxBytes: number) {}

  get bytes(): number {
    return this.size;
  }

  /** Appends a frame; returns false (and clears the buffer) when the utterance would be too large. */
  append(frame: Buffer): boolean {
    if (this.size + frame.length > this.maxBytes) {
      this.clear();
      return false;
    }
    // ws may hand out a view into a larger receive buffer; copy only small frames' bytes later at take().
    this.chunks.push(frame);
    this.size += frame.length;
    return true;
  }

  /** Returns the whole utterance and empties the buffer. */
  take(): Buffer {
    const out = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.size);
    this.clear();
    return out;
  }

  clear(): void {
    this.chunks = [];
    this.size = 0;
  }
}
