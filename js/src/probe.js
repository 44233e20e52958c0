// The front-end probe: answers the kernel at once, so it knows a widget front end is live,
// and says whether this page reaches the gateway itself (then views follow from the page).
import { pageGateway } from "../lib/sources.js";

export default {
  async initialize({ model }) {
    const gateway = pageGateway(model);
    const reachable = gateway ? await gateway.health() : false;
    model.send({ type: "hello", gateway: reachable });
  },
  render({ el }) {
    el.hidden = true;
  },
};
