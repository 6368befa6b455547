// The app's code, as uni-app apps call the push API (issue 15 item 4). Modelled on
// public uni-app code: App.vue's onLaunch registering onPushMessage and then asking
// getPushClientId with success/fail callbacks (msgbyte/tailchat client/w2a/app.js;
// DCloud's own uni-push 2.0 sample in dcloudio/unidocs-zh docs/api/plugins/push.md);
// chat apps that re-post a "receive" as a local notification with createPushMessage
// and read res.data.payload on "click"; channel set-up that looks with
// getAllChannels().indexOf(id) before setPushChannel. Nothing here knows it runs on
// unipush-bridge but the install line, which a uni-app H5 build adds once.
(function () {
  "use strict";
  var uni = (window.uni = window.uni || {});
  var params = new URLSearchParams(location.search);
  // The pairing token is handed over once (here in the URL, as a user would paste it);
  // the SDK keeps it in localStorage, so later visits need nothing.
  UniPushBridge.install(uni, { token: params.get("token") || undefined });

  var state = (window.appState = { cid: null, cidError: null, events: [], notified: [], clicks: [] });
  function log(text) {
    var li = document.createElement("li");
    li.textContent = text;
    document.getElementById("log").appendChild(li);
  }

  var App = {
    onLaunch: function () {
      var channelManager = uni.getChannelManager();
      if (channelManager.getAllChannels().indexOf("chat") < 0) {
        channelManager.setPushChannel({ channelId: "chat", channelDesc: "Chat messages", importance: 4 });
      }
      uni.onPushMessage(function (res) {
        state.events.push({ type: res.type, data: res.data });
        log(res.type + ": " + JSON.stringify(res.data));
        if (res.type === "receive") {
          // the page is open: show it as a notification of our own, keeping the payload
          var payload = res.data.payload;
          state.notified.push(payload);
          uni.createPushMessage({
            title: res.data.title,
            content: res.data.content,
            payload: payload,
            channelId: "chat",
            success: function () {
              log("createPushMessage:ok");
            },
            fail: function (err) {
              log(err.errMsg);
              state.createError = err.errMsg;
            },
          });
        } else if (res.type === "click") {
          var data = res.data.payload;
          state.clicks.push({
            payload: data,
            same: state.notified.indexOf(data) >= 0, // the very object we passed in
          });
          log("open chat " + (data && data.chatId));
        }
      });
      uni.getPushClientId({
        success: function (res) {
          state.cid = res.cid;
          document.getElementById("cid").textContent = "cid: " + res.cid;
        },
        fail: function (err) {
          state.cidError = err.errMsg;
          log(err.errMsg);
        },
      });
    },
  };
  App.onLaunch();
})();
