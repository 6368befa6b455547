'use strict';
// Shaped like dcloudio/hello-uni-push uniCloud-alipay/cloudfunctions/uni-push/index.js:
// getPushManager inside main with the undocumented getRequestBody key, an object payload
// with a timestamp, the deprecated channel object and raw vendor options. The original
// has a fixed push_clientid; here it comes from the event so the sample reaches a daemon.
exports.main = async (event, context) => {

	return uniCloud.getPushManager({
		appId: "__UNI__DESKTOP", // the client app's appId (the daemon's --appid)
		"getRequestBody": true,
	}).sendMessage({
		"push_clientid": event.push_clientid,
		"title": "留言",
		"content": "留言审核通过",
		"payload": {
			"name": "留言审核通过",
			"time": Date.now()
		},
		// offline push through the phone makers' channels (configured at each vendor)
		"channel": {
			"HW": "NORMAL",
			"XM": "112735",
			"OP": "msg-pass",
		},
		"options": {
			"HW": {
				"/message/android/notification/default_sound": true,
				"/message/android/notification/importance": "NORMAL",
				"/message/android/notification/channel_id": "msg-pass",
				"/message/android/category": "IM"
			},
			"OP": {
				"/channel_id": "msg-pass"
			},
			"XM": {
				"/extra.channel_id": "112735"
			},
			"VV": {
				"/category": "NORMAL",
			}
		}
	})
};
