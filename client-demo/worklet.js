// AudioWorklet: forwards microphone samples (Float32, 128 per render quantum) to the page.
class Capture extends AudioWorkletProcessor {
  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    if (channel) this.port.postMessage(channel.slice(0));
    return true;
  }
}
registerProcessor('parley-capture', Capture);
