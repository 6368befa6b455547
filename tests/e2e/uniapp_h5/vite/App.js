// App.vue's script, as uni-app apps write it (the same calls as ../app.js, modelled on
// public uni-app code): every uni.* here is the global uni, as in a .vue file.
const state = (window.appState = { cid: null, cidError: null, events: [], notified: [], clicks: [] });

function log(text) {
  const li = document.createElement("li");
  li.textContent = text;
  document.getElementById("log").appendChild(li);
}

export default {
  onLaunch() {
    const channelManager = uni.getChannelManager();
    if (channelManager.getAllChannels().indexOf("chat") < 0) {
      channelManager.setPushChannel({ channelId: "chat", channelDesc: "Chat messages", importance: 4 });
    }
    uni.onPushMessage((res) => {
      state.events.push({ type: res.type, data: res.data });
      log(res.type + ": " + JSON.stringify(res.data));
      if (res.type === "receive") {
        const payload = res.data.payload;
        state.notified.push(payload);
        uni.createPushMessage({
          title: res.data.title,
          content: res.data.content,
          payload,
          channelId: "chat",
          success: () => log("createPushMessage:ok"),
          fail: (err) => {
            log(err.errMsg);
            state.createError = err.errMsg;
          },
        });
      } else if (res.type === "click") {
        const data = res.data.payload;
        state.clicks.push({ payload: data, same: state.notified.indexOf(data) >= 0 });
      }
    });
    uni.getPushClientId({
      success: (res) => {
        state.cid = res.cid;
      },
      fail: (err) => {
        state.cidError = err.errMsg;
        log(err.errMsg);
      },
    });
  },
};
