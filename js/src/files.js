// The file browser widget (`%interactions files`, reply.files(), job.files()).
import { mountFileBrowser } from "../lib/filebrowser.js";
import { browserFiles, kernelFiles, pageGateway } from "../lib/sources.js";

export default {
  render({ model, el }) {
    const gateway = model.get("follower") === "browser" ? pageGateway(model) : null;
    const source = gateway ? browserFiles(model, gateway) : kernelFiles(model);
    const browser = mountFileBrowser(el, { source, env: model.get("environment_id") });
    const onRefresh = (msg) => msg && msg.type === "refresh" && browser.refresh();
    model.on("msg:custom", onRefresh);
    // While an agent writes into the environment, the listing follows it.
    const timer = setInterval(() => model.get("live") && browser.refresh(), 3000);
    return () => {
      clearInterval(timer);
      model.off("msg:custom", onRefresh);
      browser.dispose();
    };
  },
};
