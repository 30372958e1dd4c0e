// AudioWorklet: hands the microphone's samples (Float32, one render quantum of 128 at a time) to
// the page, which packs them into 100 ms PCM16 frames. Runs on the audio thread: keep it tiny.
class ParleyCapture extends AudioWorkletProcessor {
  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    if (channel && channel.length) this.port.postMessage(channel.slice(0));
    return true;
  }
}
registerProcessor('parley-capture', ParleyCapture);
