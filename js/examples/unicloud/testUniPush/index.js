// Shaped like dogyy0119/nurse-service uniCloud-aliyun/cloudfunctions/testUniPush/index.js:
// every field from the event, force_notification on, a Huawei vendor option, the answer
// logged and nothing returned.
'use strict';
const uniPush = uniCloud.getPushManager({appId: "__UNI__DESKTOP"}) // the client app's appId (the daemon's --appid)

exports.main = async (event, context) => {
	let res = await uniPush.sendMessage({
		"push_clientid": event.pushId,
		"force_notification": true, // the client shows a notification even when online
		"title": event.title,
		"content": event.content,
		"payload": {
			"text": event.text
		},
		"options": {
			"HW": {
				// Huawei test messages (500 a day); not for production
				"/message/android/target_user_type": 1
			}
		}
	})

	console.log(res)
};
